"""Canary recall: does the suspect reproduce the per-account canaries we planted?

Two kinds: the keyed canaries the gateway inserts (``distillwarden.watermark.canary``:
invented facts derived from each account's key, tested by asking the suspect for them), and
free-form canaries listed in a file, described below.

A canary is a rare, made-up string (a fictional fact, a unique phrase) served only to one
account. A model that reproduces it has seen that account's outputs. Canaries are read from
a JSONL file (``{"account", "canary", "trigger"?, "decoy"?}``); a *trigger* is a prompt
meant to elicit the canary. Decoys are strings of the same kind that were never served:
their hit rate is the chance level, and a one-sided Fisher exact test compares it with the
hit rate of the real canaries.

Matching is exact (after normalising case, punctuation and whitespace) or near: the best
window of the output with the canary's word count (±2 words) reaching ``near_threshold``
character similarity, to survive light paraphrase.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AccountCanaryRecall",
    "Canary",
    "CanaryHit",
    "CanaryResult",
    "KeyedCanaryResult",
    "canary_recall",
    "keyed_canary_questions",
    "keyed_canary_recall",
    "match_canary",
    "read_canaries",
]

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


@dataclass(frozen=True)
class Canary:
    """One planted (or decoy) canary string."""

    account: str
    text: str
    trigger: str | None = None
    decoy: bool = False


@dataclass(frozen=True)
class CanaryHit:
    """Where a canary turned up in the suspect's output."""

    canary: Canary
    kind: str  # "exact" or "near"
    score: float
    text_index: int
    excerpt: str


@dataclass(frozen=True)
class CanaryResult:
    """Recall of real canaries versus decoys, with Fisher's exact test when decoys exist."""

    canaries: int
    decoys: int
    hits: list[CanaryHit]
    decoy_hits: list[CanaryHit]
    p_value: float | None
    texts_searched: int

    @property
    def recall(self) -> float:
        return len(self.hits) / self.canaries if self.canaries else 0.0

    def to_dict(self) -> dict[str, Any]:
        def hit(h: CanaryHit) -> dict[str, Any]:
            return {
                "account": h.canary.account,
                "canary": h.canary.text,
                "kind": h.kind,
                "score": h.score,
                "text_index": h.text_index,
                "excerpt": h.excerpt,
            }

        by_account: dict[str, int] = {}
        for h in self.hits:
            by_account[h.canary.account] = by_account.get(h.canary.account, 0) + 1
        return {
            "canaries": self.canaries,
            "decoys": self.decoys,
            "recalled": len(self.hits),
            "recall": self.recall,
            "decoy_hits": len(self.decoy_hits),
            "p_value": self.p_value,
            "hits_by_account": by_account,
            "texts_searched": self.texts_searched,
            "hits": [hit(h) for h in self.hits],
            "decoy_hit_details": [hit(h) for h in self.decoy_hits],
        }


def read_canaries(path: str | Path) -> list[Canary]:
    """Read canaries from JSONL; each error names the line."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read canaries file {p}: {exc.strerror}") from exc
    out: list[Canary] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from exc
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("canary"), str)
            or not obj["canary"].strip()
        ):
            raise ValueError(f'{p}:{lineno}: expected {{"account": ..., "canary": "..."}}')
        trigger = obj.get("trigger")
        out.append(
            Canary(
                account=str(obj.get("account") or ""),
                text=obj["canary"],
                trigger=trigger if isinstance(trigger, str) and trigger.strip() else None,
                decoy=bool(obj.get("decoy", False)),
            )
        )
    if not out:
        raise ValueError(f"{p} holds no canaries")
    return out


def _norm(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def match_canary(
    canary: str, text: str, near_threshold: float = 0.85
) -> tuple[str, float, int] | None:
    """``(kind, score, char offset in the normalised text)`` of the best match, or None."""
    c, t = _norm(canary), _norm(text)
    if not c or not t:
        return None
    at = t.find(c)
    if at >= 0:
        return "exact", 1.0, at
    cw, tw = c.split(), t.split()
    best = (0.0, 0)
    starts = [0]
    for w in tw[:-1]:
        starts.append(starts[-1] + len(w) + 1)
    for size in range(max(1, len(cw) - 2), len(cw) + 3):
        for i in range(0, max(1, len(tw) - size + 1)):
            window = " ".join(tw[i : i + size])
            sm = difflib.SequenceMatcher(None, c, window, autojunk=False)
            if sm.real_quick_ratio() < near_threshold or sm.quick_ratio() < near_threshold:
                continue
            r = sm.ratio()
            if r > best[0]:
                best = (r, starts[i] if i < len(starts) else 0)
    if best[0] >= near_threshold:
        return "near", best[0], best[1]
    return None


def canary_recall(
    canaries: Sequence[Canary], texts: Sequence[str], *, near_threshold: float = 0.85
) -> CanaryResult:
    """Search ``texts`` for every canary (first, best match per canary)."""
    hits: list[CanaryHit] = []
    decoy_hits: list[CanaryHit] = []
    for canary in canaries:
        found: CanaryHit | None = None
        for i, text in enumerate(texts):
            m = match_canary(canary.text, text, near_threshold)
            if m is None:
                continue
            kind, score, at = m
            norm = _norm(text)
            hit = CanaryHit(
                canary, kind, score, i, norm[max(0, at - 60) : at + len(canary.text) + 60]
            )
            if found is None or hit.score > found.score:
                found = hit
            if kind == "exact":
                break
        if found is not None:
            (decoy_hits if canary.decoy else hits).append(found)
    real = [c for c in canaries if not c.decoy]
    decoys = [c for c in canaries if c.decoy]
    p: float | None = None
    if decoys and real:
        from scipy.stats import fisher_exact

        table = [
            [len(hits), len(real) - len(hits)],
            [len(decoy_hits), len(decoys) - len(decoy_hits)],
        ]
        p = float(fisher_exact(table, alternative="greater").pvalue)
    return CanaryResult(len(real), len(decoys), hits, decoy_hits, p, len(texts))


@dataclass(frozen=True)
class AccountCanaryRecall:
    """One account's keyed canaries (``distillwarden.watermark.canary``) asked of the suspect."""

    account: str
    asked: int
    recalled: int
    log10_p: float | None  # None in corpus mode: the corpus was not produced by asking
    log10_p_holm: float | None
    significant: bool
    hits: list[dict[str, str]]


@dataclass(frozen=True)
class KeyedCanaryResult:
    """Recall of every candidate account's keyed canaries, Holm-adjusted over accounts.

    In endpoint mode the suspect is asked each canary's question and an answer counts when
    it contains the canary's four-digit value (chance 1/9000 per question, exact binomial
    tail). In corpus mode a text counts when it states a canary's subject and value; no
    p-value is given there (the corpus was not produced by asking)."""

    mode: str
    alpha: float
    accounts: list[AccountCanaryRecall]

    @property
    def attributed(self) -> list[AccountCanaryRecall]:
        return [a for a in self.accounts if a.significant]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "alpha": self.alpha,
            "attributed": [a.account for a in self.attributed],
            "accounts": [a.__dict__ for a in self.accounts],
        }


def keyed_canary_questions(keys: dict[str, bytes], count: int = 8) -> list[tuple[str, Any]]:
    """``(account, canary)`` for every candidate account's keyed canaries, in order."""
    from ..watermark.canary import CanarySet

    return [(a, c) for a, key in keys.items() for c in CanarySet(key, count=count).canaries]


def keyed_canary_recall(
    keys: dict[str, bytes],
    *,
    answers: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
    count: int = 8,
    alpha: float = 1e-3,
) -> KeyedCanaryResult:
    """Score the suspect's ``answers`` to :func:`keyed_canary_questions` (endpoint mode) or
    search ``texts`` for the canaries (corpus mode)."""
    import numpy as np

    from ..watermark.canary import CanarySet
    from ..watermark.stats import LN10, holm_log

    rows: list[AccountCanaryRecall] = []
    mode = "questions" if answers is not None else "corpus"
    offset = 0
    for account, key in keys.items():
        cs = CanarySet(key, count=count)
        hits: list[dict[str, str]] = []
        if answers is not None:
            mine = list(answers[offset : offset + count])
            offset += count
            rec = cs.recall(mine)
            for c, a in zip(cs.canaries, mine, strict=True):
                if c.value in re.findall(r"\d{4}", a):
                    hits.append({"canary": f"{c.subject} is {c.value}", "answer": a[:200]})
            rows.append(
                AccountCanaryRecall(account, rec.asked, rec.recalled, rec.log10_p, 0.0, False, hits)
            )
        else:
            found: set[str] = set()
            for text in texts or ():
                for c in cs.found_in(text):
                    if c.subject not in found:
                        found.add(c.subject)
                        hits.append({"canary": f"{c.subject} is {c.value}", "answer": text[:200]})
            rows.append(AccountCanaryRecall(account, count, len(found), None, None, False, hits))
    if answers is not None and rows:
        log_p = np.array([(r.log10_p or 0.0) * LN10 for r in rows])
        holm = holm_log(log_p) / LN10
        limit = np.log10(alpha)
        rows = [
            AccountCanaryRecall(
                r.account, r.asked, r.recalled, r.log10_p, float(h), bool(h <= limit), r.hits
            )
            for r, h in zip(rows, holm, strict=True)
        ]
    rows.sort(key=lambda r: (r.log10_p_holm or 0.0, -r.recalled))
    return KeyedCanaryResult(mode, alpha, rows)
