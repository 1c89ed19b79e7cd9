"""Synonym sets for the lexical watermark, built from WordNet 3.0 (Debian ``wordnet-base``).

A word joins a set only when substituting it keeps its meaning in almost any context: it is
a single lower-case word, its most frequent sense (first in WordNet's index) carries at least
``dominance`` of all its tagged uses across parts of speech (so "well" the adverb never
becomes a noun's synonym), that sense is tagged at least ``min_count`` times in SemCor, and
the set's words share that first sense. Irregular inflections (``thought``), ``-ing`` forms
and function words are left out. Regular noun plurals get their own sets.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["SynonymGroup", "SynonymSets", "WordNetUnavailable", "find_wordnet", "load_synonyms"]

_POS_FILES = {"a": "index.adj", "r": "index.adv", "n": "index.noun", "v": "index.verb"}
_SS_DIGIT = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}
_WORD = re.compile(r"^[a-z]{4,}$")
# function words and particles whose WordNet adverb/adjective senses do not cover their
# everyday (prepositional, discourse) uses: never substituted
_NEVER_TEXT = """about above across after again ahead along also around away back before behind below
    beside besides between beyond down each either else even ever first here inside instead
    just last later least less like many more most much near neither next once only other
    over past perhaps quite rather right same since some still such than that then there
    these this those though through thus together under very well what when where which
    while whole within without wrong absolutely style styles manner mode strategy scheme
    fabric fabrics cloth cloths"""
_NEVER = frozenset(_NEVER_TEXT.split())
_SEARCH = (
    "/usr/share/wordnet",
    "/usr/local/share/wordnet",
    "/usr/share/nltk_data/corpora/wordnet",
    str(Path.home() / "nltk_data" / "corpora" / "wordnet"),
)


class WordNetUnavailable(RuntimeError):
    """WordNet's data files were not found; the message says how to install them."""


@dataclass(frozen=True)
class SynonymGroup:
    """Interchangeable words and their usage weights (summing to 1)."""

    gid: str
    words: tuple[str, ...]
    weights: tuple[float, ...]

    def weight(self, word: str) -> float:
        return self.weights[self.words.index(word)]


@dataclass(frozen=True)
class SynonymSets:
    """Word -> its synonym group, for every word that may be substituted."""

    groups: tuple[SynonymGroup, ...]
    index: dict[str, SynonymGroup]

    def group_of(self, word: str) -> SynonymGroup | None:
        return self.index.get(word)

    def __len__(self) -> int:
        return len(self.groups)


def find_wordnet(path: str | Path | None = None) -> Path:
    """The WordNet dict folder: ``path``, ``$DISTILLWARDEN_WORDNET`` or a standard place."""
    candidates: Iterable[str | Path] = (
        [path]
        if path
        else [p for p in [os.environ.get("DISTILLWARDEN_WORDNET")] if p] + list(_SEARCH)
    )
    for c in candidates:
        p = Path(c)
        if (p / "index.adj").is_file() and (p / "cntlist.rev").is_file():
            return p
    raise WordNetUnavailable(
        "WordNet 3.0 data not found (looked for index.adj and cntlist.rev in "
        f"{[str(c) for c in candidates]}); install it with `apt-get install wordnet-base` "
        "or point DISTILLWARDEN_WORDNET at a WordNet dict folder"
    )


def _plural(word: str) -> str | None:
    if word.endswith(("s", "x", "z", "ch", "sh", "y", "f", "fe", "o", "man")):
        return None
    return word + "s"


@lru_cache(maxsize=4)
def load_synonyms(
    wordnet_dir: str | None = None,
    *,
    min_count: int = 5,
    dominance: float = 0.6,
    min_share: float = 0.15,
    frequency_power: float = 1.0,
    parts_of_speech: tuple[str, ...] = ("a", "r", "n"),
) -> SynonymSets:
    """Build the synonym sets (about a second; cached per argument set).

    ``frequency_power`` shapes the weights: 1 keeps each word's natural share of its set
    (so watermarked text keeps word frequencies), 0 makes the choice uniform (stronger
    evidence per substitution). Words below ``min_share`` of their set are dropped as too
    rare to substitute naturally."""
    root = find_wordnet(wordnet_dir)
    total: dict[str, int] = defaultdict(int)
    first: dict[tuple[str, str], int] = {}
    with open(root / "cntlist.rev", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 3 or "%" not in parts[0]:
                continue
            key, sense_no, cnt = parts
            lemma, rest = key.split("%", 1)
            count = int(cnt)
            total[lemma] += count
            pos = _SS_DIGIT.get(rest[:1])
            if pos and sense_no == "1":
                first[(lemma, pos)] = first.get((lemma, pos), 0) + count
    irregular: set[str] = set()
    for exc in ("noun.exc", "adj.exc", "adv.exc", "verb.exc"):
        if (root / exc).is_file():
            with open(root / exc, encoding="utf-8") as fh:
                irregular.update(line.split()[0] for line in fh if line.strip())
    by_synset: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for pos in parts_of_speech:
        with open(root / _POS_FILES[pos], encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(" "):
                    continue
                parts = line.split()
                lemma = parts[0]
                if not _WORD.match(lemma) or lemma in _NEVER or lemma in irregular:
                    continue
                if (pos == "n" and lemma.endswith("s")) or lemma.endswith("ing"):
                    continue  # plural-only nouns ("authorities") and -ing forms shift meaning
                n_ptr = int(parts[3])
                offsets = parts[4 + n_ptr + 2 :]
                count = first.get((lemma, pos), 0)
                if not offsets or count < min_count or count < dominance * total[lemma]:
                    continue
                by_synset[(pos, offsets[0])].append((lemma, count))
    groups: list[SynonymGroup] = []
    for (pos, offset), members in sorted(by_synset.items()):
        top = max(c for _, c in members)
        kept = sorted((w, c) for w, c in members if c >= min_share * top)
        if len(kept) < 2:
            continue
        raw = [float(c) ** frequency_power for _, c in kept]
        s = sum(raw)
        words = tuple(w for w, _ in kept)
        weights = tuple(r / s for r in raw)
        groups.append(SynonymGroup(f"{pos}{offset}", words, weights))
        if pos == "n":
            plurals = [_plural(w) for w in words]
            if all(plurals):
                groups.append(SynonymGroup(f"{pos}{offset}p", tuple(plurals), weights))  # type: ignore[arg-type]
    index: dict[str, SynonymGroup] = {}
    kept_groups: list[SynonymGroup] = []
    for g in groups:
        if any(w in index for w in g.words):
            continue  # keep the sets disjoint: a word must map back to one set
        kept_groups.append(g)
        for w in g.words:
            index[w] = g
    return SynonymSets(tuple(kept_groups), index)
