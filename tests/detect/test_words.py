"""The compiled word pass: words equal their regex definition, hashes agree between kernels."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwarden.detect import words
from distillwarden.events.reader import _quote_str

_PIECES = st.sampled_from(
    list('abcxyz AZ09.,;:!?"\'“”\n\t-_[]{}()*') + ["é", "ß", "中", "\xa0", "€", "🙂", "ж"]
    + ["name", "[name]", "<org_1>", "{{ user }}", "xxx", "company a,", '"' + "q" * 199 + '"',
       '"' + "q" * 201 + '"', "“" + "é" * 200 + "”", "“" + "é" * 201 + "”"]
)
_TEXT = st.lists(_PIECES, max_size=30).map("".join)


def _regex_words(arr: pa.Array, max_chars: int, max_words: int) -> list[list[str]]:
    """The definition: blank quoted spans in the first characters, then runs of word
    characters, the first ``max_words``."""
    con = duckdb.connect()
    con.register("x", pa.table({"t": arr}))
    q = _quote_str(words.QUOTED_PATTERN)
    rows = con.execute(
        f"SELECT regexp_extract_all(regexp_replace(left(t, {max_chars}), {q}, ' ', 'g'), "
        f"'[a-z\\x{{80}}-\\x{{10ffff}}]+')[1:{max_words}] FROM x"
    ).fetchall()
    con.close()
    return [r[0] for r in rows]


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(_TEXT, min_size=1, max_size=10),
    skip=st.integers(0, 3),
    max_chars=st.integers(1, 400),
    max_words=st.integers(1, 12),
)
def test_words_equal_the_regex_definition(
    texts: list[str], skip: int, max_chars: int, max_words: int
) -> None:
    """For any text, on sliced arrays (non-zero offset): the compiled scan finds the words
    the regexes define, quoted slots (up to 200 characters, one line) blanked."""
    arr = pa.array(["lead-in"] * skip + [t.lower() for t in texts], pa.string()).slice(skip)
    got = words.row_words(arr, max_chars=max_chars, max_words=max_words)
    assert got == _regex_words(arr, max_chars, max_words)


_WORDS = st.lists(st.sampled_from(["alpha", "beta", "gamma", "délta", "中文", "x"]), max_size=14)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(_WORDS, min_size=2, max_size=8), index_rows=st.lists(_WORDS, max_size=4))
def test_hashes_follow_the_words_and_agree_between_kernels(
    rows: list[list[str]], index_rows: list[list[str]]
) -> None:
    """Equal word sequences hash equal, different ones differ; template prefixes follow the
    first eight words; shingle counts, MinHash and benchmark hits equal what the flat
    shingles of the index-building kernel give."""
    texts = pa.array([" ".join(r) for r in rows], pa.string())
    kw = {"max_chars": 800, "max_words": 100}
    counts, flat, whole = words.shingle_table(texts, **kw)
    idx_counts, idx_flat, idx_whole = words.shingle_table(
        pa.array([" ".join(r) for r in index_rows], pa.string()), **kw)
    shingles = np.unique(idx_flat)
    items = np.unique(idx_whole)
    got = words.word_hashes(texts, shingles=shingles, items=items, suffix_chars=80, **kw)
    for i, a in enumerate(rows):
        for j, b in enumerate(rows):
            assert (got["whole"][i] == got["whole"][j]) == (a == b)
            assert (got["tpl_prefix"][i] == got["tpl_prefix"][j]) == (a[:8] == b[:8])
    assert np.array_equal(got["whole"], whole)
    assert np.array_equal(got["n_shingles"], counts)
    assert counts.tolist() == [max(len(r) - words.SHINGLE + 1, 0) for r in rows]
    starts = np.concatenate(([0], np.cumsum(counts)))
    index_set = set(shingles.tolist())
    for i, r in enumerate(rows):
        own = flat[starts[i] : starts[i + 1]]
        assert got["bench_hits"][i] == sum(int(s) in index_set for s in own.tolist())
        assert got["exact"][i] == (r in index_rows)
        for fp, (mul, add) in (("fp_a", (words._MH_MUL[0], words._MH_ADD[0])),
                               ("fp_b", (words._MH_MUL[1], words._MH_ADD[1]))):
            with np.errstate(over="ignore"):
                want = (own * mul + add).min() if len(own) else 0
            assert got[fp][i] == want


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(_TEXT, min_size=2, max_size=10), chars=st.integers(1, 40))
def test_template_suffix_follows_its_definition(texts: list[str], chars: int) -> None:
    """Suffix hashes are equal exactly when the SQL definition's suffixes are: the last
    ``chars`` characters, after their first space."""
    arr = pa.array(texts, pa.string())
    e = np.zeros(0, np.uint64)
    got = words.word_hashes(arr, max_chars=10, max_words=5, suffix_chars=chars, shingles=e,
                            items=e)["tpl_suffix"]
    con = duckdb.connect()
    con.register("x", pa.table({"t": arr}))
    want = [r[0] for r in con.execute(
        f"SELECT array_to_string(string_split(right(t, {chars}), ' ')[2:], ' ') FROM x"
    ).fetchall()]
    con.close()
    for i in range(len(texts)):
        for j in range(len(texts)):
            assert (got[i] == got[j]) == (want[i] == want[j])


def test_bitmap_holds_every_indexed_shingle() -> None:
    """The Bloom filter never drops a member (a miss there would hide a benchmark hit)."""
    rng = np.random.default_rng(3)
    shingles = np.sort(rng.integers(0, 2**63, 5000, dtype=np.uint64) * np.uint64(2))
    bits = words.bitmap(shingles)
    top = (shingles >> np.uint64(64 - words.BITMAP_BITS)).astype(np.int64)
    assert ((bits[top >> 3] >> (top & 7)) & 1).all()
    assert bits.sum() > 0 and np.unpackbits(bits).sum() <= len(shingles)


def test_null_texts_are_an_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="must not be null"):
        words.row_words(pa.array(["a", None]), max_chars=10, max_words=5)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(_WORDS, min_size=1, max_size=8),
    index_rows=st.lists(st.tuples(_WORDS, st.integers(0, 2)), max_size=6),
)
def test_match_set_is_the_exact_items_set_else_the_set_of_most_hits(
    rows: list[list[str]], index_rows: list[tuple[list[str], int]]
) -> None:
    """``match_set``: the set of an exactly matched item (one set only), else the set most of
    the row's shingle hits belong to (smaller label on a tie; shingles of several sets
    count for none), -1 when neither names one."""
    kw = {"max_chars": 800, "max_words": 100}
    texts = pa.array([" ".join(r) for r in rows], pa.string())
    counts, flat, _ = words.shingle_table(texts, **kw)
    idx_counts, idx_flat, idx_whole = words.shingle_table(
        pa.array([" ".join(r) for r, _ in index_rows], pa.string()), **kw)
    labels_of: dict[int, set[int]] = {}
    for (_, label), start, n in zip(index_rows, np.cumsum(idx_counts) - idx_counts, idx_counts,
                                    strict=True):
        for sh in idx_flat[start : start + n].tolist():
            labels_of.setdefault(sh, set()).add(label)
    whole_labels: dict[int, set[int]] = {}
    for (_, label), w in zip(index_rows, idx_whole.tolist(), strict=True):
        whole_labels.setdefault(w, set()).add(label)

    def one(labels: set[int]) -> int:
        return next(iter(labels)) if len(labels) == 1 else words.MIXED_SET

    shingles = np.array(sorted(labels_of), np.uint64)
    items = np.array(sorted(whole_labels), np.uint64)
    got = words.word_hashes(
        texts, shingles=shingles, items=items, suffix_chars=80,
        shingle_sets=np.array([one(labels_of[x]) for x in shingles.tolist()], np.uint8),
        item_sets=np.array([one(whole_labels[x]) for x in items.tolist()], np.uint8), **kw,
    )["match_set"]
    _, _, row_whole = words.shingle_table(texts, **kw)
    for i, start in enumerate((np.cumsum(counts) - counts).tolist()):
        w = int(row_whole[i])
        if w in whole_labels and one(whole_labels[w]) != words.MIXED_SET:
            assert got[i] == one(whole_labels[w])
            continue
        tally: dict[int, int] = {}
        for sh in flat[start : start + counts[i]].tolist():
            if sh in labels_of and one(labels_of[sh]) != words.MIXED_SET:
                tally[one(labels_of[sh])] = tally.get(one(labels_of[sh]), 0) + 1
        want = min(tally, key=lambda k: (-tally[k], k)) if tally else -1
        assert got[i] == want


def test_match_set_ties_go_to_the_smaller_label_and_mixed_shingles_count_for_none() -> None:
    """A row made of two items of two sets, as many hits each: the smaller label; a row
    whose hits are all in shingles shared by two sets: none."""
    kw = {"max_chars": 800, "max_words": 100}
    a = "one two three four five"  # 2 shingles
    b = "six seven eight nine ten"  # 2 shingles
    _, flat, whole = words.shingle_table(pa.array([a, b, b + " " + a], pa.string()), **kw)
    shingles, inverse = np.unique(flat[:4], return_inverse=True)
    for labels, want in (((2, 1), 1), ((1, 2), 1)):
        sets = np.array([labels[0] if i < 2 else labels[1] for i in range(4)], np.uint8)
        shingle_sets = np.zeros(len(shingles), np.uint8)
        shingle_sets[inverse] = sets
        got = words.word_hashes(
            pa.array([b + " " + a, a + " " + b], pa.string()), shingles=shingles,
            items=np.sort(whole[:2]), suffix_chars=80, shingle_sets=shingle_sets,
            item_sets=np.zeros(2, np.uint8), **kw)["match_set"]
        assert got.tolist() == [want, want]
    mixed = np.full(len(shingles), words.MIXED_SET, np.uint8)
    got = words.word_hashes(
        pa.array([b + " " + a], pa.string()), shingles=shingles, items=np.zeros(0, np.uint64),
        suffix_chars=80, shingle_sets=mixed, **kw)["match_set"]
    assert got.tolist() == [-1]
