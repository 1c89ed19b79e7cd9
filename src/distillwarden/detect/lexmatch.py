"""Every lexicon and the placeholder pattern matched in one scan of each text window, and
the lexicons' word-level cues in one compiled pass (:mod:`.cues`).

An RE2 *set* (``RE2::Set``, through Google's ``google-re2`` bindings) runs all the patterns
of :mod:`.lexicons` as one automaton and reports which of them occur in a text: one linear
pass per window, where matching each pattern apart (or their union, then each pattern on the
hits) scans most text several times. Placeholders are also counted, with Arrow's RE2 kernel,
but only in the windows the set found one in. The patterns' results are those of matching each
pattern on its own with Arrow's ``match_substring_regex`` and ``count_substring_regex``
(the tests hold them to it); a lexicon's flag is its pattern's or its cues'.

The set is compiled once per process; its automaton's cache of states persists between
calls, so later windows are matched at full speed.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import re2

from ._utf8 import utf8_buffers
from .cues import match_cues
from .lexicons import DESENS_NOTE, LEXICONS, PLACEHOLDER_PATTERN

__all__ = ["LexiconMatches", "match_lexicons"]

#: the set's patterns, in column order: each lexicon, the placeholder pattern, then the
#: statement that the text was anonymised
_PATTERNS = (*LEXICONS.values(), PLACEHOLDER_PATTERN, DESENS_NOTE)
_PLACEHOLDER = len(LEXICONS)
_DESENS_NOTE = _PLACEHOLDER + 1

#: memory budget of the compiled set (RE2's ``max_mem``)
_MAX_MEM = 64 << 20

_set: re2.Set | None = None
_lock = threading.Lock()


def _compiled() -> re2.Set:
    global _set
    with _lock:
        if _set is None:
            options = re2.Options()
            # the union of the patterns needs more automaton states than RE2's default
            # budget (8 MiB) holds: short of it, the DFA cache is reset over and over and the
            # scan runs tens of times slower
            options.max_mem = _MAX_MEM
            patterns = re2.Set.SearchSet(options)
            for pattern in _PATTERNS:
                patterns.Add(pattern)
            patterns.Compile()
            _set = patterns
        return _set


class LexiconMatches(dict[str, np.ndarray]):
    """Per row: ``f_<lexicon>`` flags (bool), ``placeholders`` (int64 count) and
    ``desens_note`` (bool: the text says it was anonymised)."""


def match_lexicons(window: pa.Array) -> LexiconMatches:
    """Which lexicons each row of ``window`` (lower-cased text, no nulls) matches, how many
    placeholder matches it holds, and whether it says it was anonymised."""
    data, offsets = utf8_buffers(window)
    compiled = _compiled()
    # the binding's own method skips the wrapper's per-call type test; the public method
    # (which answers None for no match) where a release no longer has it
    binding = getattr(compiled, "_set", None)
    match = binding.Match if binding is not None else compiled.Match
    text = data.data  # a memoryview of the bytes: slicing it copies nothing
    bounds = offsets.tolist()
    found = [match(text[a:b]) or () for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    n_found = np.fromiter(map(len, found), np.int64, len(found))
    flags = np.zeros((len(found), len(_PATTERNS)), np.bool_)
    flags[np.repeat(np.arange(len(found)), n_found),
          np.fromiter(itertools.chain.from_iterable(found), np.int64, int(n_found.sum()))] = True
    cues = match_cues(window)
    out = LexiconMatches(
        (f"f_{name}", flags[:, j] | cues[:, j]) for j, name in enumerate(LEXICONS)
    )
    placeholders = np.zeros(len(found), np.int64)
    rows = np.flatnonzero(flags[:, _PLACEHOLDER])
    if len(rows):
        counted = pc.count_substring_regex(pc.take(window, pa.array(rows)), PLACEHOLDER_PATTERN)
        placeholders[rows] = counted.to_numpy(zero_copy_only=False)
    out["placeholders"] = placeholders
    out["desens_note"] = flags[:, _DESENS_NOTE].copy()
    return out
