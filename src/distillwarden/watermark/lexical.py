"""Post-hoc lexical watermark for black-box upstreams (CATER-style, NeurIPS 2022).

When the provider proxies a model it cannot change, finished text is watermarked by keyed
synonym choice: wherever a word of a WordNet synonym set appears, it is replaced by the
member that a keyed hash of (previous word, set) selects. The hash draws each member with
its natural usage weight, so over many contexts every word keeps its usual frequency: word
counts alone do not reveal the watermark, only the key does (CATER's conditional
watermark). Detection counts, over distinct (previous word, set) sites, how often the text
holds the keyed choice; under the null each site matches with the observed word's weight,
so the evidence has an exact Poisson-binomial tail (binomial when weights are equal).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .stats import LN10, bonferroni_log, holm_log, poisson_binom_log_sf
from .synonyms import SynonymGroup, SynonymSets, load_synonyms

__all__ = ["LexicalDetection", "LexicalWatermarker", "attribute_lexical"]

_TOKEN = re.compile(r"[A-Za-z]+")
_LABEL = b"distillwarden/watermark/lexical/v1"


@dataclass(frozen=True)
class LexicalDetection:
    """Evidence that a text carries a key's lexical watermark."""

    words: int
    sites: int
    matches: int
    expected_matches: float
    log10_p: float
    alpha: float
    sites_needed: int

    @property
    def verdict(self) -> str:
        if self.log10_p <= math.log10(self.alpha):
            return "watermarked"
        if self.sites < self.sites_needed:
            return "not_enough_evidence"
        return "no_watermark"

    @property
    def message(self) -> str:
        if self.verdict == "watermarked":
            return f"watermarked ({self.matches}/{self.sites} sites, p = 10^{self.log10_p:.1f})"
        if self.verdict == "not_enough_evidence":
            return (
                f"not enough evidence: {self.sites} synonym sites, about {self.sites_needed} "
                f"needed (roughly {self.sites_needed * 70:,} words of prose)"
            )
        return (
            f"no watermark detected ({self.matches}/{self.sites} sites, p = 10^{self.log10_p:.2f})"
        )


def _case_like(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _plain_case(word: str) -> bool:
    return word.islower() or word.isupper() or (word[:1].isupper() and word[1:].islower())


def _context(prev: str) -> str:
    return "a" if prev == "an" else prev


class LexicalWatermarker:
    """Keyed synonym substitution; ``apply`` marks text, ``detect`` tests it.

    ``key`` is the account's watermark key (:func:`derive_account_key`); a separate subkey is
    derived for the lexical mark so it never reveals the generation watermark's green lists.
    """

    def __init__(self, key: bytes, synonyms: SynonymSets | None = None) -> None:
        if len(key) < 16:
            raise ValueError("lexical watermark keys must be at least 16 bytes")
        self._key = hmac.new(key, _LABEL, hashlib.sha256).digest()
        self.synonyms = synonyms if synonyms is not None else load_synonyms()

    def choice(self, prev: str, group: SynonymGroup) -> str:
        """The keyed member of ``group`` after the word ``prev`` (drawn by usage weight)."""
        digest = hashlib.blake2b(
            f"{_context(prev)}\x00{group.gid}".encode(), key=self._key, digest_size=8
        ).digest()
        u = int.from_bytes(digest, "little") / float(1 << 64)
        acc = 0.0
        for word, w in zip(group.words, group.weights, strict=True):
            acc += w
            if u < acc:
                return word
        return group.words[-1]

    def apply(self, text: str) -> str:
        """``text`` with keyed synonym choices; spacing, punctuation and case are kept."""
        out: list[str] = []
        pos = 0
        prev = ""
        last_word_slot = -1
        for m in _TOKEN.finditer(text):
            out.append(text[pos : m.start()])
            word = m.group(0)
            low = word.lower()
            group = self.synonyms.group_of(low) if _plain_case(word) else None
            if group is not None:
                chosen = self.choice(prev, group)
                if chosen != low:
                    word = _case_like(chosen, word)
                    low = chosen
                    if prev in ("a", "an") and last_word_slot >= 0:
                        article = "an" if low[0] in "aeiou" else "a"
                        out[last_word_slot] = _case_like(article, out[last_word_slot])
            last_word_slot = len(out)
            out.append(word)
            prev = low
            pos = m.end()
        out.append(text[pos:])
        return "".join(out)

    def sites(self, texts: str | Sequence[str]) -> list[tuple[str, SynonymGroup, str]]:
        """Distinct (previous word, set) sites across ``texts`` with the word found there
        (each text starts without a previous word, as ``apply`` treats it)."""
        seen: set[tuple[str, str]] = set()
        found: list[tuple[str, SynonymGroup, str]] = []
        for text in [texts] if isinstance(texts, str) else texts:
            prev = ""
            for m in _TOKEN.finditer(text):
                word = m.group(0)
                low = word.lower()
                group = self.synonyms.group_of(low) if _plain_case(word) else None
                if group is not None:
                    site = (_context(prev), group.gid)
                    if site not in seen:
                        seen.add(site)
                        found.append((prev, group, low))
                prev = low
        return found

    def detect(self, texts: str | Sequence[str], *, alpha: float = 1e-3) -> LexicalDetection:
        """Test a text, or a corpus of separately marked texts pooled, for this key's
        lexical watermark (exact tail p-value)."""
        sites = self.sites(texts)
        probs = [g.weight(w) for _, g, w in sites]
        matches = sum(self.choice(p, g) == w for p, g, w in sites)
        log_p = poisson_binom_log_sf(matches, probs) if sites else 0.0
        mean_w = (
            sum(sum(w * w for w in g.weights) for g in self.synonyms.groups) / len(self.synonyms)
            if len(self.synonyms)
            else 0.5
        )
        needed = math.ceil(math.log(alpha) / math.log(mean_w)) if 0 < mean_w < 1 else 1
        return LexicalDetection(
            words=sum(
                len(_TOKEN.findall(t)) for t in ([texts] if isinstance(texts, str) else texts)
            ),
            sites=len(sites),
            matches=matches,
            expected_matches=float(sum(probs)),
            log10_p=log_p / LN10,
            alpha=alpha,
            sites_needed=needed,
        )


def attribute_lexical(
    texts: str | Sequence[str],
    keys: Mapping[str, bytes],
    *,
    alpha: float = 1e-3,
    method: Literal["bonferroni", "holm"] = "holm",
    top: int | None = 10,
    synonyms: SynonymSets | None = None,
) -> list[tuple[str, float, float, bool]]:
    """Rank accounts by lexical-watermark evidence: ``(account, log10 p, adjusted log10 p,
    attributed)`` best first, family-wise error controlled at ``alpha`` over all accounts."""
    if not keys:
        raise ValueError("no candidate accounts given; pass at least one account id")
    syn = synonyms if synonyms is not None else load_synonyms()
    names = list(keys)
    log_p = np.array([LexicalWatermarker(keys[n], syn).detect(texts).log10_p * LN10 for n in names])
    adj = holm_log(log_p) if method == "holm" else bonferroni_log(log_p, len(names))
    order = np.argsort(log_p, kind="stable")[: top if top is not None else None]
    la = math.log(alpha)
    return [
        (names[i], float(log_p[i]) / LN10, float(adj[i]) / LN10, bool(adj[i] <= la)) for i in order
    ]
