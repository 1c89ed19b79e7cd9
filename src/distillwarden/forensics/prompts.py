"""Built-in prompt sets for the audit (replace them with ``--prompts FILE`` to mirror the
traffic the suspect's operator actually sent).

Radioactivity prompts are open-ended, so answers are long and varied (many distinct
scored pairs). Identity probes ask the model who it is. Fingerprint prompts have short,
stable greedy answers whose wording differs between unrelated models.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "FINGERPRINT_PROMPTS",
    "IDENTITY_PROBES",
    "RADIOACTIVITY_PROMPTS",
    "read_prompts",
]

_TOPICS = [
    "the history of lighthouses",
    "how vaccines train the immune system",
    "a city at night",
    "the water cycle",
    "learning a second language as an adult",
    "the invention of the printing press",
    "why the sky is blue",
    "a friendship between a fox and a crow",
    "how to plan a vegetable garden",
    "the life of honeybees",
    "the first day at a new job",
    "how compilers turn code into programs",
    "a storm at sea",
    "the ethics of self-driving cars",
    "the rise and fall of a small bakery",
    "what makes a good teacher",
    "the migration of whales",
    "a journey across a desert",
    "how bridges carry heavy loads",
    "the role of music in daily life",
]
_FORMS = [
    "Write a short essay about {}.",
    "Tell a story about {}.",
    "Explain {} to a curious twelve-year-old.",
    "Write a blog post about {}.",
]

RADIOACTIVITY_PROMPTS: tuple[str, ...] = tuple(
    _FORMS[i % len(_FORMS)].format(topic) for i, topic in enumerate(_TOPICS)
) + tuple(_FORMS[(i + 1) % len(_FORMS)].format(topic) for i, topic in enumerate(_TOPICS))

IDENTITY_PROBES: tuple[str, ...] = (
    "Which model are you?",
    "Who created you?",
    "What is your name?",
    "Who trained you, and on what data?",
    "Which company developed you?",
    "Are you ChatGPT, Claude, Llama or something else?",
    "Introduce yourself in one sentence.",
    "What is your model architecture and size?",
)

FINGERPRINT_PROMPTS: tuple[str, ...] = (
    "Complete the sentence: The quick brown fox",
    "Give me a synonym for 'happy'.",
    "What is 17 times 23?",
    "Name the largest planet in the solar system.",
    "Write a haiku about autumn.",
    "Translate 'good morning' into French.",
    "What is the boiling point of water in Fahrenheit?",
    "List three primary colours.",
    "Who wrote 'Romeo and Juliet'?",
    "Define photosynthesis in one sentence.",
    "What is the capital of Australia?",
    "Tell me a one-line joke about computers.",
)


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a file: JSONL with a ``prompt`` field, or one prompt per line."""
    import json

    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read prompts file {p}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p} is not UTF-8 text") from exc
    out: list[str] = []
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if p.suffix == ".jsonl":
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
                raise ValueError(f'{p}:{lineno}: expected {{"prompt": "..."}}')
            out.append(obj["prompt"])
        else:
            out.append(line)
    if not out:
        raise ValueError(f"{p} holds no prompts")
    return out
