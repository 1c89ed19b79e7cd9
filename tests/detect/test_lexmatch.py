"""One RE2 set scan per window gives what matching each pattern apart with Arrow gives (each
lexicon's flag also takes its word cues, which test_cues.py checks on their own)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwarden.detect import lexmatch
from distillwarden.detect.cues import match_cues
from distillwarden.detect.lexicons import DESENS_NOTE, LEXICONS, PLACEHOLDER_PATTERN
from distillwarden.detect.lexmatch import match_lexicons

# pieces of the lexicons' phrasings, placeholders, and text around them
_PIECES = st.sampled_from([
    "step by step", "step-by-step", "show your work", "let's think", "<think>", "逐步",
    "jsonl", "instruction-response", "generate 20 diverse", "training data", "数据集",
    "which response is better", "[[a]]", "act as a judge", "score from 1 to 10",
    "which model are you", "who trained you", "ignore previous instructions",
    "thought: x", "action:", "observation:", "tool call", "function_calling",
    "[name]", "[redacted_2]", "<email>", "{{ user.name }}", "person_3", "company a,", "xxx",
    "****", "█", "d41d8cd98f00b204e9800998ecf8427e", "anon-3f2a9c1", "user_a",
    "[employee_name]", "[user_id: ", "row", "(redacted)", "138", "5678", "张**", "○○",
    "user_####", "#### ", "cust-8e1b0c4d", "patient 2", "data has been anonymized", "脱敏",
    " ", "\n", ".", ",", "a", "the", "answer", "é", "中", "🙂", "\u2014",
])
_TEXT = st.lists(_PIECES, max_size=25).map("".join)


def _apart(texts: list[str]) -> dict[str, list[object]]:
    """Each pattern matched on its own with Arrow, or'ed with the lexicon's word cues."""
    arr = pa.array(texts, pa.string())
    cues = match_cues(arr)
    out: dict[str, list[object]] = {
        f"f_{name}": (np.array(pc.match_substring_regex(arr, pattern).to_pylist(), bool)
                      | cues[:, j]).tolist()
        for j, (name, pattern) in enumerate(LEXICONS.items())
    }
    out["placeholders"] = pc.count_substring_regex(arr, PLACEHOLDER_PATTERN).to_pylist()
    out["desens_note"] = pc.match_substring_regex(arr, DESENS_NOTE).to_pylist()
    return out


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_TEXT, min_size=1, max_size=8), skip=st.integers(0, 2))
def test_set_scan_equals_each_pattern_apart(texts: list[str], skip: int) -> None:
    window = pa.array(["lead"] * skip + texts, pa.string()).slice(skip)
    got = match_lexicons(window)
    want = _apart(texts)
    assert sorted(got) == sorted(want)
    for key, values in want.items():
        assert got[key].tolist() == values, key


def test_flags_and_counts_on_known_text() -> None:
    got = match_lexicons(pa.array([
        "think step by step and give me jsonl with [name] and [email]",
        "what is the capital of france",
        "",
    ]))
    assert got["f_cot"].tolist() == [True, False, False]
    assert got["f_dataset"].tolist() == [True, False, False]
    assert not got["f_judge"].any()
    assert got["placeholders"].tolist() == [2, 0, 0]
    assert got["placeholders"].dtype == np.int64


def test_public_match_method_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the bindings lack the private method, the public one gives the same results."""
    texts = ["think step by step: [name] and [email]", "plain text", "", "which model are you"]
    want = match_lexicons(pa.array(texts))

    class PublicOnly:
        def __init__(self, inner: object) -> None:
            self.Match = inner.Match  # type: ignore[attr-defined]

    monkeypatch.setattr(lexmatch, "_set", PublicOnly(lexmatch._compiled()))
    got = match_lexicons(pa.array(texts))
    assert {k: v.tolist() for k, v in got.items()} == {k: v.tolist() for k, v in want.items()}


def test_empty_window() -> None:
    got = match_lexicons(pa.array([], pa.string()))
    assert all(len(v) == 0 for v in got.values())
