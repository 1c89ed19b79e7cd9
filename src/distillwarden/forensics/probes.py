"""Identity and fingerprint probes: does the suspect answer like our model does?

A student model distilled from ours tends to inherit its self-description ("I am SmolLM,
made by Hugging Face") and the wording of its greedy answers. For each probe we compare the
suspect's answer with ours. Similarity alone has no scale, so the test is a permutation
test: under the null (the suspect's answers are unrelated to ours) an answer is no more
similar to our answer *to the same prompt* than to our answers to other prompts. The
p-value is exact for the permutations drawn: ``(1 + #{null ≥ observed}) / (1 + P)``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "KNOWN_IDENTITIES",
    "ProbeResult",
    "identity_mentions",
    "probe_test",
    "similarity",
]

KNOWN_IDENTITIES: dict[str, tuple[str, ...]] = {
    "SmolLM (Hugging Face)": ("smollm", "hugging face", "huggingface"),
    "GPT / ChatGPT (OpenAI)": ("chatgpt", "gpt-4", "gpt-3", "openai"),
    "Claude (Anthropic)": ("claude", "anthropic"),
    "Llama (Meta)": ("llama", "meta ai"),
    "Gemini / Gemma (Google)": ("gemini", "gemma", "google deepmind", "bard"),
    "Qwen (Alibaba)": ("qwen", "alibaba", "tongyi"),
    "DeepSeek": ("deepseek",),
    "Mistral": ("mistral", "mixtral"),
}

_WORD = re.compile(r"\w+", re.UNICODE)


def _bigrams(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < 2:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + 2]) for i in range(len(words) - 1)}


def similarity(a: str, b: str) -> float:
    """0..1: the mean of the character-level match ratio and word-bigram Jaccard overlap."""
    a, b = a.strip(), b.strip()
    if not a and not b:
        return 1.0
    ratio = difflib.SequenceMatcher(None, a.lower(), b.lower(), autojunk=False).ratio()
    ga, gb = _bigrams(a), _bigrams(b)
    jaccard = len(ga & gb) / len(ga | gb) if ga | gb else 0.0
    return 0.5 * (ratio + jaccard)


def identity_mentions(texts: Sequence[str]) -> dict[str, int]:
    """How many of ``texts`` name each known model family (case-insensitive)."""
    counts: dict[str, int] = {}
    for family, terms in KNOWN_IDENTITIES.items():
        n = sum(1 for t in texts if any(term in t.lower() for term in terms))
        if n:
            counts[family] = n
    return counts


@dataclass(frozen=True)
class ProbeResult:
    """Matched similarity of suspect and reference answers, with its permutation p-value."""

    kind: str
    prompts: list[str]
    suspect: list[str]
    reference: list[str]
    similarities: list[float]
    matched_mean: float
    null_mean: float
    null_sd: float
    p_value: float
    permutations: int
    exact_matches: int
    suspect_identities: dict[str, int] = field(default_factory=dict)
    reference_identities: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "matched_similarity": self.matched_mean,
            "null_similarity_mean": self.null_mean,
            "null_similarity_sd": self.null_sd,
            "p_value": self.p_value,
            "permutations": self.permutations,
            "exact_matches": self.exact_matches,
            "probes": len(self.prompts),
            "suspect_identities": self.suspect_identities,
            "reference_identities": self.reference_identities,
            "answers": [
                {"prompt": p, "suspect": s, "reference": r, "similarity": sim}
                for p, s, r, sim in zip(
                    self.prompts, self.suspect, self.reference, self.similarities, strict=True
                )
            ],
        }


def probe_test(
    kind: str,
    prompts: Sequence[str],
    suspect: Sequence[str],
    reference: Sequence[str],
    *,
    permutations: int = 9999,
    seed: int = 0,
) -> ProbeResult:
    """Compare the suspect's answers with ours prompt by prompt (see the module docstring)."""
    n = len(prompts)
    if not (n == len(suspect) == len(reference)):
        raise ValueError("prompts, suspect answers and reference answers must align")
    if n < 2:
        raise ValueError("a probe test needs at least two prompts")
    sim = np.array([[similarity(s, r) for r in reference] for s in suspect])
    matched = float(np.mean(np.diag(sim)))
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    null = np.empty(permutations)
    for i in range(permutations):
        null[i] = sim[rows, rng.permutation(n)].mean()
    p = (1.0 + float(np.sum(null >= matched - 1e-12))) / (1.0 + permutations)
    return ProbeResult(
        kind=kind,
        prompts=list(prompts),
        suspect=list(suspect),
        reference=list(reference),
        similarities=[float(x) for x in np.diag(sim)],
        matched_mean=matched,
        null_mean=float(null.mean()),
        null_sd=float(null.std()),
        p_value=p,
        permutations=permutations,
        exact_matches=sum(
            1 for s, r in zip(suspect, reference, strict=True) if s.strip() == r.strip()
        ),
        suspect_identities=identity_mentions(suspect),
        reference_identities=identity_mentions(reference),
    )
