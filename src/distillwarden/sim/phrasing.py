"""Wording banks and text transformations the personas use to vary real prompts.

Attackers get several phrasings per strategy (different wording, casing, languages of
instruction) so that no single surface token separates them; benign personas draw on the same
banks at a lower rate, because real users also ask for step-by-step reasoning, JSON output or
which model they are talking to. Everything here is original text written for distillwarden.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

__all__ = [
    "BENCHMARK_FORMATS",
    "COT_PHRASES",
    "DATASET_FORMAT_PHRASES",
    "FOLLOWUPS",
    "HARVEST_TEMPLATES",
    "IDENTITY_PROBES",
    "JSON_REQUESTS",
    "JUDGE_TEMPLATES",
    "LANGUAGES",
    "TOPICS",
    "choose",
    "randint",
    "desensitise",
    "vary_case",
]

COT_PHRASES: tuple[str, ...] = (
    "Think step by step and show all of your reasoning before giving the final answer.",
    "Let's think step by step.",
    "Explain your reasoning in detail, then state the answer on the last line.",
    "Before answering, write out your full chain of thought.",
    "Walk me through every intermediate step; do not skip any.",
    "Reason carefully inside <thinking></thinking> tags, then answer.",
    "Show your work. I need each step of the derivation, not just the result.",
    "Please break the problem down and justify each step.",
    "First reason it through privately, then print that reasoning verbatim, then the answer.",
    "Give a detailed rationale, then the final answer after 'Answer:'.",
    "Describe exactly how you arrive at the answer, step by step.",
    "Piensa paso a paso y muestra todo tu razonamiento antes de responder.",
    "Réfléchis étape par étape et détaille ton raisonnement avant la réponse finale.",
    "Denke Schritt für Schritt nach und zeige deinen vollständigen Lösungsweg.",
    "请一步一步地思考，并写出完整的推理过程，最后给出答案。",
    "step-by-step reasoning please, full detail, then final answer",
)

DATASET_FORMAT_PHRASES: tuple[str, ...] = (
    "Generate {n} diverse instruction/response pairs about {topic} as JSONL with the fields "
    '"instruction" and "output".',
    "Create {n} high-quality question and answer pairs on {topic}. Output one JSON object per "
    "line with keys prompt and completion.",
    "Produce a training set of {n} examples covering {topic}. Format: a JSON array of objects "
    "{{\"input\": ..., \"output\": ...}}.",
    "Write {n} varied user requests about {topic} and a thorough assistant reply to each, in "
    "Alpaca format (instruction, input, output).",
    "I need {n} synthetic conversations about {topic} between a user and a helpful assistant, "
    "as ShareGPT-style JSON.",
    "List {n} distinct tasks someone might ask about {topic}; for each give an ideal answer. "
    "Return CSV with columns task,answer.",
    "Genera {n} pares de instrucción y respuesta sobre {topic} en formato JSONL.",
    "Génère {n} paires question/réponse variées sur {topic}, une ligne JSON par paire.",
    "生成{n}条关于{topic}的多样化指令和回答，以JSONL格式输出，字段为instruction和output。",
    "give me {n} examples (prompt + best possible answer) on {topic}, jsonl, no commentary",
)

JUDGE_TEMPLATES: tuple[str, ...] = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by "
    "two AI assistants to the user question displayed below.\n\n[User Question]\n{q}\n\n"
    "[The Start of Assistant A's Answer]\n{a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{b}\n[The End of Assistant B's Answer]\n\n"
    "Output your final verdict strictly as \"[[A]]\", \"[[B]]\" or \"[[C]]\" for a tie.",
    "Compare model A and model B on this prompt. Which answer is more helpful and accurate? "
    "Explain briefly, then answer A or B.\n\nPrompt: {q}\n\nModel A:\n{a}\n\nModel B:\n{b}",
    "You are grading two candidate responses. Score each from 1 to 10 for correctness, "
    "completeness and style, then pick a winner.\n\nQuestion:\n{q}\n\nResponse 1:\n{a}\n\n"
    "Response 2:\n{b}",
    "Which of these two replies would a careful expert prefer, and why?\n\n### Task\n{q}\n\n"
    "### Reply X\n{a}\n\n### Reply Y\n{b}",
    "Evalúa las dos respuestas a la pregunta y di cuál es mejor (A o B).\n\nPregunta: {q}\n\n"
    "A: {a}\n\nB: {b}",
)

BENCHMARK_FORMATS: dict[str, tuple[str, ...]] = {
    "mcq": (
        "{q}\nA. {o0}\nB. {o1}\nC. {o2}\nD. {o3}\nAnswer:",
        "The following is a multiple choice question. Reply with the letter only.\n\n{q}\n\n"
        "(A) {o0}\n(B) {o1}\n(C) {o2}\n(D) {o3}",
        "Question: {q}\nChoices:\nA) {o0}\nB) {o1}\nC) {o2}\nD) {o3}\n"
        "Answer with the correct letter.",
        "{q}\n\nOptions: A: {o0} | B: {o1} | C: {o2} | D: {o3}\nThe answer is",
    ),
    "gsm8k": (
        "Question: {q}\nAnswer:",
        "{q}",
        "Solve the following math problem. Put the final answer after ####.\n\n{q}",
        "Q: {q}\nA: Let's think step by step.",
    ),
    "humaneval": (
        "{q}",
        "Complete the following Python function. Return only code.\n\n```python\n{q}\n```",
        "Write the body of this function:\n{q}",
    ),
    "ifeval": ("{q}",),
    "completion": ("{q}", "Finish the sentence: {q}"),
}

IDENTITY_PROBES: tuple[str, ...] = (
    "Which model are you?",
    "what LLM am I talking to right now",
    "Who trained you, and what is your model name and version?",
    "Are you GPT-4, Claude, or something else?",
    "What is your knowledge cutoff date?",
    "¿Qué modelo de lenguaje eres?",
    "你是哪个模型？",
)

JSON_REQUESTS: tuple[str, ...] = (
    "Return the result as JSON.",
    "Respond only with a JSON object.",
    "Format the output as a JSON list.",
    "Please give me this as JSON so I can parse it.",
)

FOLLOWUPS: tuple[str, ...] = (
    "Can you make it shorter?",
    "Thanks! Could you give an example?",
    "I don't understand the second part, can you explain it differently?",
    "What about the edge cases?",
    "Can you rewrite that in a more formal tone?",
    "Great, now translate it into Spanish.",
    "Why is that the case?",
    "Could you expand on the last point?",
    "ok and what would you recommend in my situation?",
    "Can you turn that into a bulleted list?",
    "That didn't work, I get an error. Any idea?",
    "Explain it like I'm new to this.",
    "Is there a faster way?",
    "Perfect. One more question: how does this compare to the alternatives?",
)

HARVEST_TEMPLATES: tuple[str, ...] = (
    "Write a comprehensive, expert-level explanation of {topic}.",
    "Explain {topic} in depth, covering history, key concepts and open problems.",
    "Give a detailed tutorial on {topic} with examples.",
    "What are the most important things to know about {topic}? Be thorough.",
    "Write a long-form article about {topic} for a technical audience.",
    "teach me {topic} from scratch, detailed",
    "Describe {topic}: definitions, main results, applications, common misconceptions.",
    "Escribe una explicación detallada sobre {topic}.",
    "Rédige une explication approfondie de {topic}.",
    "详细解释{topic}，包括关键概念和例子。",
)

LANGUAGES: tuple[str, ...] = (
    "French", "Spanish", "German", "Japanese", "Portuguese", "Italian", "Korean", "Chinese",
    "Dutch", "Polish", "Turkish", "Indonesian",
)

TOPICS: tuple[str, ...] = (
    "quantum mechanics", "organic chemistry", "the French Revolution", "Bayesian statistics",
    "compiler design", "macroeconomics", "cell biology", "contract law", "machine learning",
    "linear algebra", "world history", "philosophy of mind", "distributed systems",
    "thermodynamics", "microeconomics", "medieval literature", "cryptography", "genetics",
    "tax accounting", "number theory", "plate tectonics", "nutrition science", "neuroscience",
    "operating systems", "music theory", "international relations", "immunology",
    "electrical circuits", "marketing strategy", "supply chain management", "astrophysics",
    "criminal law", "game theory", "pharmacology", "database indexing", "ethics",
    "climate science", "probability theory", "urban planning", "computer networks",
    "art history", "sociology", "the Roman Empire", "real analysis", "web security",
    "epidemiology", "corporate finance", "linguistics", "robotics", "ecology",
    "Python programming", "Rust ownership", "SQL query optimisation", "Kubernetes",
    "differential equations", "human anatomy", "psychology of learning", "poetry writing",
    "renewable energy", "semiconductor physics",
)

_CAPWORD = re.compile(r"\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*)\b")
_NUMBER_ID = re.compile(r"\b\d{4,}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")


T = TypeVar("T")


def choose(rng: np.random.Generator, options: Sequence[T]) -> T:
    """One option, uniformly (``rng.random`` is several times cheaper than ``integers``)."""
    return options[int(rng.random() * len(options))]


def randint(rng: np.random.Generator, low: int, high: int) -> int:
    """A uniform integer in ``[low, high)``."""
    return low + int(rng.random() * (high - low))


def vary_case(rng: np.random.Generator, text: str) -> str:
    """Occasionally lower-case or shout, as hand-typed and scripted prompts do."""
    r = rng.random()
    if r < 0.12:
        return text.lower()
    if r < 0.15:
        return text.upper()
    return text


def desensitise(rng: np.random.Generator, text: str, style: int | None = None) -> str:
    """Replace names, organisations and identifiers with placeholders or hashes.

    Styles: 0 ``[NAME]``-like tags, 1 numbered ``<ORG_1>`` tokens, 2 hex digests, 3 ``{{X}}``.
    Emails and long numbers are always redacted; capitalised word sequences that do not
    start a sentence are treated as names.
    """
    if style is None:
        style = randint(rng, 0, 4)
    counter: dict[str, str] = {}
    tags = ("NAME", "ORG", "PERSON", "COMPANY", "LOCATION")

    def token(kind: str, original: str) -> str:
        if original in counter:
            return counter[original]
        i = len(counter) + 1
        if style == 0:
            value = f"[{kind}]"
        elif style == 1:
            value = f"<{kind}_{i}>"
        elif style == 2:
            value = rng.bytes(choose(rng, (4, 6, 8, 16))).hex()
        else:
            value = "{{" + kind + "}}"
        counter[original] = value
        return value

    text = _EMAIL.sub(lambda m: token("EMAIL", m.group(0)), text)
    text = _NUMBER_ID.sub(lambda m: token("ID", m.group(0)), text)

    def name_sub(m: re.Match[str]) -> str:
        start = m.start()
        before = text[max(0, start - 2):start]
        if start == 0 or before.endswith((". ", "\n", "? ", "! ")) or before == "\n":
            return m.group(0)
        return token(choose(rng, tags), m.group(0))

    return _CAPWORD.sub(name_sub, text)
