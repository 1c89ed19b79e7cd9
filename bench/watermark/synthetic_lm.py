"""A seeded synthetic language model whose entropy we control, for watermark statistics.

Each step the next token is drawn from K candidates that a fixed hash assigns to the
previous token, with Zipf-shaped logits divided by a temperature. A per-step temperature
mixture imitates real LMs, where most steps are near-deterministic and a few are open.
With account keys it applies exactly the distillwarden green-list bias (same hash, same
repeated-context masking as ``AccountWatermarkLogitsProcessor``), vectorised over a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distillwarden.watermark.config import WatermarkConfig
from distillwarden.watermark.greenlist import (
    context_hash_np,
    gamma_threshold,
    key_words,
    score_np,
    token_hash_np,
    token_premix_np,
)


@dataclass(frozen=True)
class SyntheticLM:
    """Candidates per step ``k``; temperatures drawn per step from ``temperatures`` with
    probabilities ``weights`` (a single temperature gives constant entropy)."""

    vocab: int = 49_152
    k: int = 32
    temperatures: tuple[float, ...] = (0.25, 1.5)
    weights: tuple[float, ...] = (0.5, 0.5)
    zipf: float = 1.2
    seed: int = 0

    def _candidates(self, prev: np.ndarray) -> np.ndarray:
        j = np.arange(self.k, dtype=np.int64)
        raw = prev[:, None].astype(np.int64) * self.k + j[None, :] + self.seed * 1_000_003
        return (token_premix_np(raw) % np.uint64(self.vocab)).astype(np.int64)

    def entropy(self) -> float:
        """Mean entropy per token (nats) of the unwatermarked model."""
        base = -self.zipf * np.log(np.arange(1, self.k + 1))
        h = 0.0
        for t, w in zip(self.temperatures, self.weights, strict=True):
            p = np.exp(base / t - np.max(base / t))
            p /= p.sum()
            h += w * float(-(p * np.log(p + 1e-300)).sum())
        return h

    def generate(
        self,
        n: int,
        length: int,
        rng: np.random.Generator,
        *,
        keys: Sequence[bytes | None] | None = None,
        config: WatermarkConfig | None = None,
    ) -> np.ndarray:
        """``(n, length)`` token ids; rows with a key are watermarked with it."""
        h = config.context_width if config is not None else 2
        base = -self.zipf * np.log(np.arange(1, self.k + 1))
        toks = np.empty((n, length + h), dtype=np.int64)
        toks[:, :h] = rng.integers(0, self.vocab, (n, h))
        marked = keys is not None and config is not None
        if marked:
            assert keys is not None and config is not None
            words = [key_words(k) if k is not None else (0, 0) for k in keys]
            k_ctx = np.array([w[0] for w in words], dtype=np.uint64)
            k_tok = np.array([w[1] for w in words], dtype=np.uint64)
            active = np.array([k is not None for k in keys])
            thr = np.uint64(gamma_threshold(config.gamma))
            history = np.zeros((n, length), dtype=np.uint64)
        temps = np.array(self.temperatures)
        for step in range(length):
            t = h + step
            cand = self._candidates(toks[:, t - 1])
            temp = temps[rng.choice(len(temps), size=n, p=self.weights)]
            logits = base[None, :] / temp[:, None]
            if marked:
                ctx = context_hash_np(k_ctx, toks[:, t - h : t])
                on = active.copy()
                if config.ignore_repeated_contexts and step:
                    on &= ~(history[:, :step] == ctx[:, None]).any(axis=1)
                history[:, step] = ctx
                green = score_np(ctx[:, None], token_hash_np(k_tok[:, None], cand)) < thr
                logits = logits + config.delta * (green & on[:, None])
            gumbel = -np.log(-np.log(rng.random((n, self.k))))
            toks[:, t] = cand[np.arange(n), np.argmax(logits + gumbel, axis=1)]
        return toks[:, h:]
