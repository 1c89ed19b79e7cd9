"""The text window: a compiled cut and ASCII lower-casing equal to its plain definition."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwarden.detect.window import SEPARATOR, _cased_pairs, text_window, window_and_spaces

_CHARS = st.sampled_from(list("aZ Q\n.\"'") + ["é", "É", "ß", "中", "İ", "Σ", "🙂", "\xa0", "ǅ"])
_TEXT = st.one_of(st.none(), st.lists(_CHARS, max_size=40).map("".join))


def _definition(prompt: str | None, fallback: str | None, head: int, tail: int) -> str:
    t = prompt if prompt is not None else (fallback if fallback is not None else "")
    if len(t) > head + tail:
        t = t[:head] + SEPARATOR + t[-tail:]
    return str(pc.utf8_lower(pa.array([t], pa.string()))[0].as_py())


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=12),
    skip=st.integers(0, 3),
    head=st.integers(0, 12),
    tail=st.integers(1, 12),
)
def test_window_equals_its_definition(
    rows: list[tuple[str | None, str | None]], skip: int, head: int, tail: int
) -> None:
    """Any text, nulls in either column, sliced arrays (non-zero offsets), cuts through
    multi-byte characters: the window is the definition's, character for character."""
    prompts = pa.array(["lead"] * skip + [p for p, _ in rows], pa.string()).slice(skip)
    fallbacks = pa.array(["in"] * skip + [f for _, f in rows], pa.string()).slice(skip)
    window, spaces = window_and_spaces(prompts, fallbacks, head=head, tail=tail)
    assert window.to_pylist() == [_definition(p, f, head, tail) for p, f in rows]
    texts = [p if p is not None else (f or "") for p, f in rows]
    assert spaces.tolist() == [t.count(" ") for t in texts]


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=0x80, exclude_categories=("Cs",)), max_size=30))
def test_lower_casing_skipped_only_where_it_changes_nothing(text: str) -> None:
    """Rows whose non-ASCII characters have no lower case skip ``utf8_lower``: any non-ASCII
    text, so every script and plane, still comes out as ``utf8_lower`` makes it."""
    window = text_window(pa.array([text, "A" + text]), head=100, tail=100).to_pylist()
    lowered = pc.utf8_lower(pa.array([text, "A" + text])).to_pylist()
    assert window == lowered


def test_cased_pairs_mark_the_cased_scripts() -> None:
    table = _cased_pairs()
    for ch in "ÉΣЖĀǅＡ𐐀":  # Latin-1, Greek, Cyrillic, Latin Extended, titlecase, fullwidth, Deseret
        b = ch.encode()
        assert table[(b[0] << 8) | b[1]], ch
    for ch in "—…“中あ한🙂\xa0é":  # punctuation, CJK, kana, Hangul, emoji, NBSP, lower case
        b = ch.encode()
        assert not table[(b[0] << 8) | b[1]], ch


def test_no_case_beyond_the_first_two_planes() -> None:
    """The table covers planes 0 and 1 only: no code point of planes 2 to 16 changes."""
    chars = [chr(c) for c in range(0x20000, 0x110000, 7)]
    assert pc.utf8_lower(pa.array(chars)).to_pylist() == chars


def test_long_prompt_keeps_both_ends_lower_cased() -> None:
    text = "START " + "x" * 5000 + " Return JSONL"
    (window,) = text_window(pa.array([text]), head=2000, tail=1000).to_pylist()
    assert window.startswith("start ") and window.endswith(" return jsonl")
    assert len(window) == 2000 + len(SEPARATOR) + 1000


def test_large_string_and_no_fallback() -> None:
    arr = pa.array(["ABC", None], pa.large_string())
    assert text_window(arr).to_pylist() == ["abc", ""]


def test_empty_input() -> None:
    assert text_window(pa.array([], pa.string())).to_pylist() == []
