"""Continuous batching generation engine for a transformers causal LM.

One worker thread owns the model. Requests queue up; at every decoding step the worker
admits waiting requests (prefilling them together), merges their key/value caches into the
running batch and decodes one token for every active row. A request that arrives while
others are generating therefore starts streaming after one prefill, not after the others
finish. Each row keeps its own sampling settings, seed and (optional) logits processor,
which is how per-account watermark keys coexist in one batch.

Events reach the caller through a sink callable invoked on the worker thread; the ASGI
app turns it into an asyncio queue with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .model import LocalModel

__all__ = [
    "EngineOverloaded",
    "FinishEvent",
    "GenerationEngine",
    "GenerationHandle",
    "RowLogitsProcessor",
    "SamplingParams",
    "TokenEvent",
]

log = logging.getLogger(__name__)

RowLogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(input_ids[1, L], scores[1, V]) -> scores[1, V]``, the transformers convention."""


class EngineOverloaded(RuntimeError):
    """Too many requests are waiting; the client should retry later."""


@dataclass(frozen=True)
class SamplingParams:
    """How one completion is sampled (OpenAI request fields)."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0


@dataclass(frozen=True)
class TokenEvent:
    """New text for one completion (may be empty while a stop string is still possible)."""

    text: str
    token_id: int
    logprob: float | None = None
    top_logprobs: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class FinishEvent:
    """The completion ended: ``stop`` (end of turn or stop string), ``length`` or ``error``."""

    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    text: str
    error: str | None = None


Sink = Callable[[TokenEvent | FinishEvent], None]


@dataclass
class GenerationHandle:
    """A submitted request; ``cancel()`` drops it at the next step (client went away)."""

    prompt_ids: list[int]
    params: SamplingParams
    sink: Sink
    processor: RowLogitsProcessor | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class _Row:
    handle: GenerationHandle
    ids: torch.Tensor  # (1, capacity) prompt + generated tokens
    length: int  # tokens in ids
    prompt_len: int
    next_token: int  # the last sampled token, fed to the model at the next step
    position: int  # position id of next_token
    generator: torch.Generator | None
    sent: int = 0  # characters already emitted
    done: bool = False

    @property
    def generated(self) -> list[int]:
        return self.ids[0, self.prompt_len : self.length].tolist()


class GenerationEngine:
    """Serves many concurrent generations from one model with continuous batching.

    ``max_batch`` bounds the rows decoded together; ``max_queue`` bounds requests waiting
    to be admitted (beyond it :meth:`submit` raises :class:`EngineOverloaded`);
    ``num_threads`` sets torch's CPU threads for the worker (a per-thread setting in
    OpenMP builds, so it is applied on the worker thread itself).
    """

    def __init__(
        self,
        local_model: LocalModel,
        *,
        max_batch: int = 8,
        max_queue: int = 256,
        max_context: int | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.local_model = local_model
        self.num_threads = num_threads
        self.max_batch = max_batch
        self.max_queue = max_queue
        cfg = local_model.model.config
        self.max_context = max_context or int(getattr(cfg, "max_position_embeddings", 2048))
        self._eos = set(local_model.eos_token_ids)
        self._forward_args = _forward_arg_names(local_model.model)
        self._pad_id = int(local_model.tokenizer.pad_token_id or 0)
        self._pending: queue.Queue[GenerationHandle] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rows: list[_Row] = []
        self._cache: Any = None
        self._mask: torch.Tensor | None = None
        self.steps = 0
        self.tokens_generated = 0
        self.step_seconds: deque[tuple[int, float]] = deque(maxlen=4096)
        """(rows, seconds) of recent decoding steps, sampling and watermark included."""

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> GenerationEngine:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="distillwarden-generate", daemon=True
            )
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker; unfinished requests end with ``finish_reason="error"``."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def active(self) -> int:
        """Rows currently being decoded."""
        return len(self._rows)

    @property
    def waiting(self) -> int:
        """Requests queued but not yet admitted."""
        return self._pending.qsize()

    # -- submission ------------------------------------------------------------------------
    def submit(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        sink: Sink,
        processor: RowLogitsProcessor | None = None,
    ) -> GenerationHandle:
        """Queue a generation; events arrive through ``sink`` on the worker thread."""
        if not prompt_ids:
            raise ValueError("the prompt is empty after tokenisation")
        if len(prompt_ids) >= self.max_context:
            raise ValueError(
                f"the prompt has {len(prompt_ids)} tokens; this model's context is "
                f"{self.max_context} tokens: shorten the prompt"
            )
        if self._pending.qsize() >= self.max_queue:
            raise EngineOverloaded(
                f"{self._pending.qsize()} requests are already waiting; retry shortly"
            )
        handle = GenerationHandle(list(prompt_ids), params, sink, processor)
        self._pending.put(handle)
        self._wake.set()
        return handle

    # -- worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        torch.set_grad_enabled(False)
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        while not self._stop.is_set():
            if not self._rows and self._pending.empty():
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                with torch.inference_mode():
                    self._admit()
                    if self._rows:
                        rows, started = len(self._rows), time.perf_counter()
                        self._decode_step()
                        self.step_seconds.append((rows, time.perf_counter() - started))
            except Exception as exc:  # a model failure ends the affected requests, not the server
                log.exception("generation step failed")
                self._fail_all(f"generation failed: {exc}")
        self._fail_all("the model server is shutting down")

    def _fail_all(self, message: str) -> None:
        for row in self._rows:
            if not row.done:
                row.handle.sink(
                    FinishEvent(
                        "error", row.prompt_len, row.length - row.prompt_len, "", error=message
                    )
                )
        self._rows = []
        self._cache = None
        self._mask = None
        if self._stop.is_set():
            while True:
                try:
                    handle = self._pending.get_nowait()
                except queue.Empty:
                    break
                handle.sink(FinishEvent("error", len(handle.prompt_ids), 0, "", error=message))

    def _take_pending(self) -> list[GenerationHandle]:
        taken: list[GenerationHandle] = []
        while len(self._rows) + len(taken) < self.max_batch:
            try:
                handle = self._pending.get_nowait()
            except queue.Empty:
                break
            if not handle.cancelled:
                taken.append(handle)
        return taken

    def _admit(self) -> None:
        handles = self._take_pending()
        if not handles:
            return
        device = self.local_model.device
        width = max(len(h.prompt_ids) for h in handles)
        input_ids = torch.full((len(handles), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(handles), width), dtype=torch.long)
        for i, h in enumerate(handles):
            n = len(h.prompt_ids)
            input_ids[i, width - n :] = torch.tensor(h.prompt_ids, dtype=torch.long)
            mask[i, width - n :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)

        out = self._forward(input_ids.to(device), mask.to(device), positions.to(device), None)
        logits = out.logits[:, -1, :].float()
        rows: list[_Row] = []
        for h in handles:
            n = len(h.prompt_ids)
            capacity = min(n + h.params.max_tokens, self.max_context) + 1
            ids = torch.zeros((1, capacity), dtype=torch.long)
            ids[0, :n] = torch.tensor(h.prompt_ids, dtype=torch.long)
            gen = None
            if h.params.seed is not None:
                gen = torch.Generator(device="cpu")
                gen.manual_seed(int(h.params.seed))
            rows.append(_Row(h, ids, n, n, -1, n - 1, gen))
        self._merge(rows, self._cache_of(out), mask.to(device))
        self._sample_and_emit(rows, logits)

    def _merge(self, rows: list[_Row], cache: Any, mask: torch.Tensor) -> None:
        """Append prefilled rows to the running batch, left-padding the shorter side."""
        from transformers import DynamicCache

        if self._cache is None or not self._rows:
            self._rows, self._cache, self._mask = rows, cache, mask
            return
        assert self._mask is not None
        old_t, new_t = self._mask.shape[1], mask.shape[1]
        width = max(old_t, new_t)
        layers = []
        for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
            pair = []
            for old, new in (
                (old_layer.keys, new_layer.keys),
                (old_layer.values, new_layer.values),
            ):
                pair.append(torch.cat([_left_pad(old, width, 2), _left_pad(new, width, 2)], 0))
            layers.append((pair[0], pair[1]))
        self._cache = DynamicCache(ddp_cache_data=layers)
        self._mask = torch.cat([_left_pad(self._mask, width, 1), _left_pad(mask, width, 1)], 0)
        self._rows = self._rows + rows

    def _decode_step(self) -> None:
        device = self.local_model.device
        assert self._mask is not None
        input_ids = torch.tensor([[r.next_token] for r in self._rows], dtype=torch.long)
        positions = torch.tensor([[r.position] for r in self._rows], dtype=torch.long)
        self._mask = torch.cat(
            [self._mask, torch.ones((len(self._rows), 1), dtype=torch.long, device=device)], 1
        )
        out = self._forward(input_ids.to(device), self._mask, positions.to(device), self._cache)
        self._cache = self._cache_of(out)
        self.steps += 1
        self._sample_and_emit(self._rows, out.logits[:, -1, :].float())

    def _forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> Any:
        """One model call; only the last position's logits are computed."""
        from transformers import DynamicCache

        cache_arg, keep_arg = self._forward_args
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": positions,
            "use_cache": True,
            cache_arg: cache if cache is not None else DynamicCache(),
        }
        if keep_arg:
            kwargs[keep_arg] = 1
        return self.local_model.model(**kwargs)

    @staticmethod
    def _cache_of(out: Any) -> Any:
        cache = getattr(out, "cache", None)
        return cache if cache is not None else out.past_key_values

    def _sample_and_emit(self, rows: list[_Row], logits: torch.Tensor) -> None:
        """Sample each row's next token, emit its text, then drop finished rows."""
        logits = logits.cpu()
        for i, row in enumerate(rows):
            if row.handle.cancelled:
                row.done = True
                continue
            scores = logits[i : i + 1]
            if row.handle.processor is not None:
                scores = row.handle.processor(row.ids[:, : row.length], scores.clone())
            token, logprob, top = _sample(scores[0], row.handle.params, row.generator)
            row.ids[0, row.length] = token
            row.length += 1
            row.next_token = token
            row.position = row.length - 1
            self.tokens_generated += 1
            self._emit(row, TokenEvent("", token, logprob, top))
        self._drop_done()

    def _emit(self, row: _Row, event: TokenEvent) -> None:
        """Send the text the new token adds (holding back a possible stop string); finish
        the row on end of turn, a stop string or the length limit."""
        params = row.handle.params
        generated = row.length - row.prompt_len
        text = str(self.local_model.tokenizer.decode(row.generated, skip_special_tokens=True))
        reason: str | None = None
        if event.token_id in self._eos:
            reason = "stop"
        for stop in params.stop:
            at = text.find(stop)
            if at >= 0:
                text, reason = text[:at], "stop"
        if reason is None and (generated >= params.max_tokens or row.length >= self.max_context):
            reason = "length"
        safe = len(text) if reason else _safe_prefix(text, params.stop)
        delta = text[row.sent : safe] if safe > row.sent else ""
        row.sent = max(row.sent, safe)
        row.handle.sink(TokenEvent(delta, event.token_id, event.logprob, event.top_logprobs))
        if reason is not None:
            row.done = True
            row.handle.sink(FinishEvent(reason, row.prompt_len, generated, text))

    def _drop_done(self) -> None:
        keep = [i for i, r in enumerate(self._rows) if not r.done]
        if len(keep) == len(self._rows):
            return
        if not keep:
            self._rows, self._cache, self._mask = [], None, None
            return
        from transformers import DynamicCache

        assert self._mask is not None
        index = torch.tensor(keep, device=self._mask.device)
        mask = self._mask.index_select(0, index)
        start = int((mask.sum(0) > 0).nonzero()[0].item())  # trim all-padding columns
        layers = [
            (
                layer.keys.index_select(0, index)[:, :, start:, :],
                layer.values.index_select(0, index)[:, :, start:, :],
            )
            for layer in self._cache.layers
        ]
        self._cache = DynamicCache(ddp_cache_data=layers)
        self._mask = mask[:, start:]
        self._rows = [self._rows[i] for i in keep]


def _forward_arg_names(model: Any) -> tuple[str, str | None]:
    """The names this transformers version uses for the KV cache and logits-to-keep."""
    import inspect

    names = set(inspect.signature(model.forward).parameters)
    cache_arg = "cache" if "cache" in names else "past_key_values"
    keep_arg = next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in names), None)
    return cache_arg, keep_arg


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim)


def _safe_prefix(text: str, stops: tuple[str, ...]) -> int:
    """Length of ``text`` that can be emitted now: hold back an incomplete UTF-8 character
    and any suffix that could still grow into a stop string."""
    safe = len(text)
    while safe > 0 and text[safe - 1] == "\ufffd":
        safe -= 1
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                safe = min(safe, len(text) - k)
                break
    return safe


def _sample(
    scores: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> tuple[int, float | None, tuple[tuple[int, float], ...]]:
    """Pick the next token from one row's scores; also its log-probability when asked."""
    logprob: float | None = None
    top: tuple[tuple[int, float], ...] = ()
    if params.temperature <= 0.0:
        token = int(torch.argmax(scores).item())
    else:
        scaled = scores / params.temperature
        probs = torch.softmax(scaled, -1)
        if params.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            cumulative = sorted_p.cumsum(-1)
            cut = int(torch.searchsorted(cumulative, torch.tensor([params.top_p])).item()) + 1
            probs = torch.zeros_like(probs).scatter_(0, order[:cut], sorted_p[:cut])
        token = int(torch.multinomial(probs, 1, generator=generator).item())
    if params.logprobs:
        logp = torch.log_softmax(scores, -1)
        logprob = float(logp[token])
        if params.top_logprobs > 0:
            values, indices = torch.topk(logp, min(params.top_logprobs, 20))
            top = tuple(
                (int(i), float(v)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)
            )
    return token, logprob, top
