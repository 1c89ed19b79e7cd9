"""The model under audit: an OpenAI-compatible endpoint we can prompt, or a text corpus of
its output that someone collected (then only the corpus-level tests apply)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import httpx

__all__ = [
    "CorpusSuspect",
    "EndpointSuspect",
    "ForensicsError",
    "Generator",
]


class ForensicsError(RuntimeError):
    """The audit cannot proceed; the message says what to check."""


class Generator(Protocol):
    """Anything that answers chat prompts (a suspect endpoint, our own model)."""

    name: str

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]: ...


@dataclass
class EndpointSuspect:
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    base_url: str
    model: str
    api_key: str | None = None
    concurrency: int = 4
    timeout_s: float = 300.0
    retries: int = 2

    @property
    def name(self) -> str:
        return f"{self.model} at {self.base_url}"

    def _one(self, client: httpx.Client, prompt: str, body: dict[str, object]) -> str:
        url = self.base_url.rstrip("/") + "/chat/completions"
        payload = {**body, "model": self.model, "messages": [{"role": "user", "content": prompt}]}
        last = ""
        for attempt in range(self.retries + 1):
            try:
                r = client.post(url, json=payload)
            except httpx.HTTPError as exc:
                raise ForensicsError(
                    f"cannot reach {url}: {exc}; check --endpoint (it should end in /v1)"
                ) from exc
            if r.status_code == 200:
                try:
                    content = r.json()["choices"][0]["message"]["content"]
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise ForensicsError(
                        f"{url} did not answer like an OpenAI chat endpoint: {r.text[:200]}"
                    ) from exc
                return str(content or "")
            last = f"HTTP {r.status_code}: {r.text[:200]}"
            if r.status_code in (401, 403):
                raise ForensicsError(f"{url} refused the request ({last}); check --api-key")
            if r.status_code not in (408, 429) and r.status_code < 500:
                raise ForensicsError(f"{url} rejected the request ({last})")
            time.sleep(min(10.0, 0.5 * 2**attempt))
        raise ForensicsError(f"{url} kept failing after {self.retries + 1} attempts ({last})")

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """One answer per prompt, in order (requests run ``concurrency`` at a time)."""
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        results: list[str] = [""] * len(prompts)
        with (
            httpx.Client(headers=headers, timeout=self.timeout_s) as client,
            ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool,
        ):
            futures = []
            for i, prompt in enumerate(prompts):
                body: dict[str, object] = {"max_tokens": max_tokens, "temperature": temperature}
                if seed is not None:
                    body["seed"] = seed + i
                futures.append(pool.submit(self._one, client, prompt, body))
            for i, fut in enumerate(futures):
                results[i] = fut.result()
                if progress is not None:
                    progress(1)
        return results


@dataclass
class CorpusSuspect:
    """Output of the suspect model collected elsewhere (texts, optionally their prompts)."""

    texts: list[str]
    prompts: list[str]
    source: str

    @property
    def name(self) -> str:
        return f"corpus {self.source}"

    @classmethod
    def read(
        cls, path: str, *, field: str | None = None, prompt_field: str | None = None
    ) -> CorpusSuspect:
        """Read a JSONL corpus (``field`` holds the text, default ``text``) or a plain text
        file (one document); errors say how to fix the input."""
        from ..watermark.inputs import InputError, read_corpus

        try:
            corpus = read_corpus(path, field=field, prompt_field=prompt_field)
        except InputError as exc:
            raise ForensicsError(str(exc)) from exc
        if not corpus.texts:
            raise ForensicsError(f"{path} holds no text to audit")
        prompts = corpus.prompts if len(corpus.prompts) == len(corpus.texts) else []
        return cls(list(corpus.texts), list(prompts), path)
