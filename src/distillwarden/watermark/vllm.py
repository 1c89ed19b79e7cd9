"""Adapter for vLLM's per-request logits-processor interface.

vLLM (the ``SamplingParams.logits_processors`` API) calls
``processor(prompt_token_ids, output_token_ids, logits) -> logits`` once per decoding step
of one request, with a 1-D ``logits`` tensor. vLLM itself is imported only by
:func:`sampling_params`, so the adapter's maths runs (and is tested) without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .config import WatermarkConfig
from .processor import GreenListBias

__all__ = ["VLLMWatermarkProcessor", "sampling_params"]


class VLLMWatermarkProcessor:
    """One request's watermark: adds ``delta`` to green logits, keyed by the account key,
    with the same repeated-context masking and length neutrality as the transformers
    processor (``temperature``: the request's sampling temperature, which vLLM applies after
    logits processors)."""

    def __init__(
        self, config: WatermarkConfig, account_key: bytes, temperature: float = 1.0
    ) -> None:
        self.config = config
        self._bias = GreenListBias(config, [account_key], temperature)
        self._seen: set[int] = set()
        self._n_output = -1

    def __call__(
        self,
        prompt_token_ids: Sequence[int],
        output_token_ids: Sequence[int],
        logits: torch.Tensor,
    ) -> torch.Tensor:
        h = self.config.context_width
        n_out = len(output_token_ids)
        if n_out != self._n_output + 1:
            self._seen.clear()
        self._n_output = n_out
        tail = list(prompt_token_ids[-h:]) + list(output_token_ids) if n_out < h else []
        window = tail[-h:] if n_out < h else list(output_token_ids[-h:])
        if len(window) < h:
            return logits
        win = torch.tensor([window], dtype=torch.int64, device=logits.device)
        ctx = self._bias.context_hashes(win)
        if self.config.ignore_repeated_contexts:
            c = int(ctx[0])
            if c in self._seen:
                return logits
            self._seen.add(c)
        on = torch.ones(1, dtype=torch.bool, device=logits.device)
        return self._bias.add_bias(logits[None, :], ctx, on)[0]


def sampling_params(
    config: WatermarkConfig, account_key: bytes, **kwargs: Any
) -> Any:  # pragma: no cover - needs vllm
    """vLLM ``SamplingParams`` carrying this account's watermark processor."""
    try:
        from vllm import SamplingParams
    except ImportError as exc:
        raise ImportError(
            "vllm is not installed; `pip install vllm` on a GPU host to use this adapter"
        ) from exc
    procs = list(kwargs.pop("logits_processors", []) or [])
    temperature = float(kwargs.get("temperature", 1.0))
    procs.append(VLLMWatermarkProcessor(config, account_key, temperature))
    return SamplingParams(logits_processors=procs, **kwargs)
