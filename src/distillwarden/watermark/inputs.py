"""Reading the text to test: pasted (stdin), plain files and JSONL corpora.

Kept apart from the CLI so the same rules (binary files refused, line-numbered JSON errors,
dotted field paths such as ``choices.0.message.content``) serve every caller.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["InputError", "TextCorpus", "read_corpus"]


class InputError(ValueError):
    """The input cannot be read as text; the message says what to pass instead."""


@dataclass
class TextCorpus:
    """Texts to test and, when the corpus has them, the prompts that produced them."""

    texts: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)


def _get_path(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if isinstance(cur, list) and part.lstrip("-").isdigit():
            idx = int(part)
            if not -len(cur) <= idx < len(cur):
                return None
            cur = cur[idx]
        elif isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
        if cur is None:
            return None
    return cur


def _decode(raw: bytes, where: str) -> str:
    if b"\x00" in raw[:8192]:
        raise InputError(
            f"{where} looks like a binary file (it contains NUL bytes); pass text, a JSONL "
            f"corpus with --field, or extract the text first"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where} is not UTF-8 text (byte {exc.start}: {exc.reason}); convert it to UTF-8"
        ) from exc


def read_corpus(
    source: str, *, field: str | None = None, prompt_field: str | None = None
) -> TextCorpus:
    """Read ``source`` (a path or ``-`` for stdin). JSONL is used when ``field`` is given
    or the file ends in ``.jsonl``; otherwise the whole input is one text."""
    if source == "-":
        raw = sys.stdin.buffer.read()
        where = "standard input"
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"{source}: no such file (use - to read pasted text from stdin)")
        if path.is_dir():
            raise InputError(f"{source} is a directory; pass a text or JSONL file")
        raw = path.read_bytes()
        where = str(path)
    text = _decode(raw, where)
    jsonl = field is not None or where.endswith(".jsonl")
    if not jsonl:
        return TextCorpus(texts=[text] if text.strip() else [])
    fld = field or "text"
    corpus = TextCorpus()
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}:{lineno}: not valid JSON ({exc.msg})") from exc
        value = _get_path(obj, fld)
        if not isinstance(value, str):
            corpus.skipped.append(f"line {lineno}: no string at field {fld!r}")
            continue
        corpus.texts.append(value)
        if prompt_field:
            prompt = _get_path(obj, prompt_field)
            if isinstance(prompt, list):  # OpenAI messages: join their contents
                prompt = "\n".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))
            if isinstance(prompt, str):
                corpus.prompts.append(prompt)
    if not corpus.texts and corpus.skipped:
        raise InputError(
            f"{where}: no line has a string at field {fld!r} ({corpus.skipped[0]}); "
            f"choose the field with --field, e.g. --field choices.0.message.content"
        )
    return corpus
