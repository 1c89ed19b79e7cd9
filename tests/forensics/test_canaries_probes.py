"""Canary matching and the probe permutation test (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillwarden.forensics.canaries import Canary, canary_recall, match_canary, read_canaries
from distillwarden.forensics.probes import identity_mentions, probe_test, similarity


def test_exact_match_ignores_case_punctuation_and_spacing() -> None:
    m = match_canary(
        "The Zorblat river flows north.", "Did you know?  the zorblat RIVER flows north!"
    )
    assert m is not None and m[0] == "exact" and m[1] == 1.0


def test_near_match_survives_light_edits_but_not_unrelated_text() -> None:
    canary = "Professor Quillon Marsh discovered the violet tide in 1873"
    m = match_canary(
        canary, "As we know, professor Quillon Marsch discovered a violet tide in 1873."
    )
    assert m is not None and m[0] == "near" and 0.85 <= m[1] < 1.0
    assert match_canary(canary, "The professor walked along the marsh at low tide.") is None


REAL = [
    "the zentrix bridge opened in 1911",
    "marlowe pepper tastes of violet",
    "captain orsk sailed the glass sea",
    "fennimore valley grows blue wheat",
    "the quillon clock strikes thirteen",
    "lake ybbin freezes every june",
]
DECOYS = [
    "the harvel tower fell in 1802",
    "prismic salt smells of cedar",
    "admiral tusk crossed the iron bay",
    "corbell plain grows red barley",
    "the nettlewick bell rings twice",
    "mount ossin glows each april",
]


def test_recall_with_decoys_gives_fisher_p() -> None:
    real = [Canary("org_a", t) for t in REAL]
    decoys = [Canary("", t, decoy=True) for t in DECOYS]
    texts = [f"blah {c.text} blah" for c in real[:5]] + ["nothing to see"]
    result = canary_recall(real + decoys, texts)
    assert len(result.hits) == 5 and not result.decoy_hits
    assert result.recall == pytest.approx(5 / 6)
    assert result.p_value is not None and result.p_value < 0.01
    assert result.to_dict()["hits_by_account"] == {"org_a": 5}
    none = canary_recall(real + decoys, ["unrelated text"] * 5)
    assert none.p_value == pytest.approx(1.0)


def test_no_decoys_means_no_p_value() -> None:
    result = canary_recall(
        [Canary("a", "glimmerfax protocol seven")], ["the glimmerfax protocol seven"]
    )
    assert result.hits and result.p_value is None


def test_read_canaries_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"account": "a", "canary": "x y z", "trigger": "tell me"}\n{"account": "b"}\n')
    with pytest.raises(ValueError, match=":2:"):
        read_canaries(path)
    path.write_text('{"account": "a", "canary": "x y z", "trigger": "tell me", "decoy": true}\n')
    (c,) = read_canaries(path)
    assert c.decoy and c.trigger == "tell me"


ANSWERS = [
    "The quick brown fox jumps over the lazy dog.",
    "A synonym for happy is joyful.",
    "17 times 23 is 391.",
    "Jupiter is the largest planet in our solar system.",
    "Crisp leaves drift down, amber light on quiet paths, the year exhales slow.",
    "Good morning in French is bonjour.",
    "Water boils at 212 degrees Fahrenheit.",
    "Red, blue and yellow are the primary colours.",
]


def test_same_answers_are_significant_shuffled_are_not() -> None:
    prompts = [f"p{i}" for i in range(len(ANSWERS))]
    same = probe_test("fingerprint", prompts, ANSWERS, ANSWERS, permutations=2000)
    assert same.p_value < 0.001 and same.exact_matches == len(ANSWERS)
    assert same.matched_mean > same.null_mean + 3 * same.null_sd
    rotated = ANSWERS[1:] + ANSWERS[:1]
    other = probe_test("fingerprint", prompts, rotated, ANSWERS, permutations=2000)
    assert other.p_value > 0.05 and other.exact_matches == 0


def test_similarity_and_identity_mentions() -> None:
    assert similarity("I am SmolLM.", "I am SmolLM.") == 1.0
    assert similarity("abc def ghi", "xyz uvw rst") < 0.3
    found = identity_mentions(["I am SmolLM, made by Hugging Face.", "I was trained by OpenAI."])
    assert found == {"SmolLM (Hugging Face)": 1, "GPT / ChatGPT (OpenAI)": 1}


def test_probe_test_rejects_misaligned_input() -> None:
    with pytest.raises(ValueError, match="align"):
        probe_test("identity", ["a", "b"], ["x"], ["y", "z"])


def _keys() -> dict[str, bytes]:
    from distillwarden.watermark import derive_account_key

    return {a: derive_account_key(b"s", a) for a in ("org_a", "org_b", "org_c")}


def test_keyed_canaries_asked_of_a_suspect_that_learned_them() -> None:
    from distillwarden.forensics.canaries import keyed_canary_questions, keyed_canary_recall

    keys = _keys()
    questions = keyed_canary_questions(keys, count=4)
    assert len(questions) == 12 and all(q.question.startswith("What is the ") for _, q in questions)
    # the suspect learned org_b's facts (3 of 4), guesses the others
    answers = [
        f"It is {c.value}." if a == "org_b" and i % 4 != 0 else "It is 1234."
        for i, (a, c) in enumerate(questions)
    ]
    result = keyed_canary_recall(keys, answers=answers, count=4)
    assert [a.account for a in result.attributed] == ["org_b"]
    top = result.accounts[0]
    assert top.account == "org_b" and top.recalled == 3 and top.log10_p < -9
    assert top.log10_p_holm >= top.log10_p
    assert all(a.recalled == 0 for a in result.accounts[1:])


def test_keyed_canaries_found_in_a_corpus() -> None:
    from distillwarden.forensics.canaries import keyed_canary_recall
    from distillwarden.watermark.canary import CanarySet

    keys = _keys()
    c = CanarySet(keys["org_c"], count=4).canaries[1]
    texts = ["plain text", f"Some answer. {c.sentence} More."]
    result = keyed_canary_recall(keys, texts=texts, count=4)
    assert result.mode == "corpus"
    found = {a.account: a.recalled for a in result.accounts}
    assert found == {"org_a": 0, "org_b": 0, "org_c": 1}
