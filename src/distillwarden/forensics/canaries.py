"""Canary recall: does the suspect reproduce the per-account canaries we planted?

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

__all__ = ["Canary", "CanaryHit", "CanaryResult", "canary_recall", "match_canary", "read_canaries"]

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
