"""Radioactivity test: does a suspect model's output carry our watermark more than chance?

A model trained on watermarked text picks up a faint preference for the green tokens of the
(context, token) pairs it saw (Sander et al., "Watermarking makes language models
radioactive", NeurIPS 2024). The signal is weak per token, so the test pools the suspect's
whole output, scores each distinct (context window, token) pair once across the corpus
(repeated and templated text would otherwise inflate the evidence and break the null),
drops windows that occur in our prompts, and compares the green count with its exact
binomial null under each account key. Given the texts our accounts were served, scoring can
be restricted to the context windows that occur in them, where a student model's bias is
concentrated. Two families of hypotheses are reported:

* per account: Holm-adjusted over all candidate accounts (which account's outputs did the
  suspect learn from?);
* pooled: the green counts of all ``k`` candidate keys summed. Keys hash independently, so
  under the null the sum is exactly Binomial(k·n, γ). When the training data mixed the
  outputs of many accounts (a hydra cluster, each account leaking a little), the pooled
  test gains about √k in z over any single account's test; for one leaker it loses √k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..watermark import WatermarkConfig
from ..watermark.detect import ScoredPairs, green_bits, green_counts, prepare_pairs
from ..watermark.stats import LN10, binom_log_sf, binom_log_sf_array, holm_log

__all__ = [
    "AccountEvidence",
    "RadioactivityResult",
    "radioactivity_test",
    "received_contexts",
]


@dataclass(frozen=True)
class AccountEvidence:
    """One candidate account: green count over the scored pairs and log10 p-values."""

    account: str
    green: int
    green_rate: float
    log10_p: float
    log10_p_holm: float
    significant: bool


@dataclass(frozen=True)
class RadioactivityResult:
    """The outcome of the radioactivity test on one corpus of suspect output."""

    texts: int
    total_tokens: int
    scored_pairs: int
    gamma: float
    alpha: float
    accounts: list[AccountEvidence]
    pooled_green: int
    pooled_trials: int
    pooled_log10_p: float
    examples: list[dict[str, Any]] = field(default_factory=list)
    pairs_before_filter: int = 0
    filtered: bool = False

    @property
    def pooled_significant(self) -> bool:
        return self.pooled_log10_p <= math.log10(self.alpha)

    @property
    def attributed(self) -> list[AccountEvidence]:
        """Accounts whose Holm-adjusted p-value is at most ``alpha``."""
        return [a for a in self.accounts if a.significant]

    def to_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "total_tokens": self.total_tokens,
            "scored_pairs": self.scored_pairs,
            "pairs_before_filter": self.pairs_before_filter,
            "filtered_to_received_contexts": self.filtered,
            "gamma": self.gamma,
            "alpha": self.alpha,
            "pooled": {
                "green": self.pooled_green,
                "trials": self.pooled_trials,
                "log10_p": self.pooled_log10_p,
                "significant": self.pooled_significant,
            },
            "accounts": [a.__dict__ for a in self.accounts],
            "attributed": [a.account for a in self.attributed],
            "examples": self.examples,
        }


def _encode(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    return [list(tokenizer.encode(t, add_special_tokens=False)) for t in texts]


def _window_keys(windows: np.ndarray) -> np.ndarray:
    """A 64-bit key per context window (polynomial hash, wrapping); a collision can only add
    a pair to the scored set, which is chosen without looking at green bits either way."""
    keys = np.zeros(windows.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in range(windows.shape[1]):
            keys = keys * np.uint64(1_000_003) + windows[:, col].astype(np.uint64)
    return keys


def received_contexts(tokenizer: Any, texts: Sequence[str], context_width: int) -> np.ndarray:
    """Keys of every context window in ``texts`` (what our accounts received), sorted."""
    rows = []
    for ids in _encode(tokenizer, texts):
        if len(ids) > context_width:
            win = np.lib.stride_tricks.sliding_window_view(np.asarray(ids, np.int64), context_width)
            rows.append(_window_keys(win[:-1]))
    return np.unique(np.concatenate(rows)) if rows else np.empty(0, np.uint64)


def radioactivity_test(
    texts: Sequence[str],
    tokenizer: Any,
    keys: Mapping[str, bytes],
    config: WatermarkConfig,
    *,
    prompts: Sequence[str] | None = None,
    received: Sequence[str] | None = None,
    alpha: float = 1e-3,
    examples: int = 3,
) -> RadioactivityResult:
    """Test suspect ``texts`` against every candidate account key (and all keys pooled).

    ``tokenizer`` is the watermarking model's tokenizer (the suspect's text is re-tokenised
    with it); ``prompts`` are the prompts the texts answer, whose windows are excluded.
    ``received``, the texts our candidate accounts were served (e.g. ``response_text`` from
    the event log), restricts scoring to context windows that occur in them: a model trained
    on those outputs learned the green bias of exactly those contexts, so the signal is
    concentrated there (Sander et al.'s filter). The choice depends on the windows only,
    never on the scored token, so the null distribution is unchanged.
    Raises :class:`~distillwarden.watermark.WatermarkConfigMismatch` when ``config`` was made
    for another tokenizer.
    """
    if not keys:
        raise ValueError("no candidate accounts; pass the accounts whose outputs may have leaked")
    config.check(tokenizer)
    ids = [s for s in _encode(tokenizer, texts) if s]
    prompt_ids = _encode(tokenizer, prompts) if prompts else None
    gamma = config.green_rate
    pairs = prepare_pairs(ids, config.context_width, prompt_ids) if ids else None
    if pairs is None:
        return RadioactivityResult(len(texts), 0, 0, gamma, alpha, [], 0, 0, 0.0)
    before = pairs.count
    if received is not None:
        seen = received_contexts(tokenizer, received, config.context_width)
        keep = np.isin(_window_keys(pairs.windows), seen)
        pairs = ScoredPairs(
            pairs.windows[keep], pairs.tokens[keep], pairs.positions[keep], pairs.total_tokens
        )
    n = pairs.count
    names = list(keys)
    counts = green_counts(pairs, [keys[a] for a in names], config.gamma)
    log_p = binom_log_sf_array(counts, np.full(counts.size, n), gamma)
    holm = holm_log(log_p)
    limit = math.log(alpha)
    accounts = sorted(
        (
            AccountEvidence(
                account=names[i],
                green=int(counts[i]),
                green_rate=int(counts[i]) / n if n else 0.0,
                log10_p=float(log_p[i]) / LN10,
                log10_p_holm=float(holm[i]) / LN10,
                significant=bool(holm[i] <= limit),
            )
            for i in range(len(names))
        ),
        key=lambda a: a.log10_p,
    )
    pooled_green = int(counts.sum())
    pooled_trials = n * len(names)
    pooled_log_p = binom_log_sf(pooled_green, pooled_trials, gamma) / LN10
    best = accounts[0].account if accounts else None
    shown = _examples(texts, tokenizer, keys[best], config, examples) if best else []
    return RadioactivityResult(
        texts=len(texts),
        total_tokens=pairs.total_tokens,
        scored_pairs=n,
        gamma=gamma,
        alpha=alpha,
        accounts=accounts,
        pooled_green=pooled_green,
        pooled_trials=pooled_trials,
        pooled_log10_p=pooled_log_p,
        examples=[{"account": best, **e} for e in shown],
        pairs_before_filter=before,
        filtered=received is not None,
    )


def _examples(
    texts: Sequence[str], tokenizer: Any, key: bytes, config: WatermarkConfig, limit: int
) -> list[dict[str, Any]]:
    """The texts with the highest green rate under ``key`` (at least 20 scored pairs)."""
    rows: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        ids = list(tokenizer.encode(text, add_special_tokens=False))
        pairs = prepare_pairs(ids, config.context_width)
        if pairs.count < 20:
            continue
        green = int(green_bits(pairs, key, config.gamma).sum())
        log_p = binom_log_sf(green, pairs.count, config.green_rate) / LN10
        rows.append(
            {
                "index": i,
                "scored_pairs": pairs.count,
                "green": green,
                "log10_p": log_p,
                "excerpt": text[:400],
            }
        )
    rows.sort(key=lambda r: float(r["log10_p"]))
    return rows[:limit]
