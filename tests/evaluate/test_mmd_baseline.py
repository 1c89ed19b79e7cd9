"""The MMD baseline: unbiased MMD², kernel, null threshold, detector behaviour."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distillwarden.evaluate.embedding_cache import EmbeddingCache
from distillwarden.evaluate.mmd_baseline import (
    MMDBaselineDetector,
    median_heuristic,
    mixture_kernel,
    unbiased_mmd2,
)


def _mmd(x: np.ndarray, y: np.ndarray) -> float:
    bw = median_heuristic(np.vstack([x, y]))
    return unbiased_mmd2(mixture_kernel(x, x, bw), mixture_kernel(y, y, bw),
                         mixture_kernel(x, y, bw))


def test_unbiased_mmd_is_near_zero_for_same_distribution() -> None:
    rng = np.random.default_rng(0)
    vals = [_mmd(rng.normal(size=(200, 8)), rng.normal(size=(200, 8))) for _ in range(10)]
    assert abs(np.mean(vals)) < 0.003
    assert min(vals) < 0 < max(vals)  # unbiased: fluctuates around zero


def test_mmd_grows_with_the_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 8))
    small = _mmd(x, rng.normal(0.3, 1, size=(200, 8)))
    large = _mmd(x, rng.normal(1.0, 1, size=(200, 8)))
    assert 0.005 < small < large


def test_kernel_is_mean_of_four_rbfs() -> None:
    x = np.array([[0.0, 0.0]])
    y = np.array([[3.0, 4.0]])  # distance 5
    expected = np.mean([np.exp(-25 / (2 * (f * 2.0) ** 2)) for f in (0.5, 1, 2, 4)])
    assert mixture_kernel(x, y, 2.0)[0, 0] == pytest.approx(expected)
    assert mixture_kernel(x, x, 2.0)[0, 0] == pytest.approx(1.0)


def test_unbiased_mmd_needs_two_samples() -> None:
    with pytest.raises(ValueError, match="two samples"):
        unbiased_mmd2(np.ones((1, 1)), np.ones((3, 3)), np.ones((1, 3)))


def _fake_embedder(texts) -> np.ndarray:
    """Topic words map to a cluster centre plus text-hash noise (deterministic, no model)."""
    out = np.empty((len(texts), 16))
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "big")
        v = np.random.default_rng(seed).normal(0, 0.3, 16)
        v[0 if t.startswith("benign") else 1] += 2.0
        out[i] = v / np.linalg.norm(v)
    return out


def _events(rows: list[tuple[str, str]]) -> pa.Table:
    return pa.table({
        "event_id": [f"e{i}" for i in range(len(rows))],
        "org_id": [o for o, _ in rows],
        "ts": pa.array(range(len(rows)), pa.timestamp("us", tz="UTC")),
        "last_user_text": [t for _, t in rows],
        "prompt_text": [t for _, t in rows],
    })


def test_detector_flags_shifted_accounts_and_passes_benign(tmp_path: Path) -> None:
    ref = _events([(f"r{i % 20}", f"benign question {i}") for i in range(600)])
    det = MMDBaselineDetector(window=60, null_draws=200, max_reference=400,
                              cache_dir=tmp_path, embedder=_fake_embedder).fit(ref)
    assert det.threshold_ == 1.0 and det.bandwidth_ > 0
    rows = [("benign1", f"benign other {i}") for i in range(60)]
    rows += [("attacker", f"attack text {i}") for i in range(60)]
    rows += [("mixed", f"attack mix {i}" if i % 2 else f"benign mix {i}") for i in range(60)]
    scores = det.decision_function(_events(rows))
    assert scores["benign1"] < 1.0 < scores["mixed"] < scores["attacker"]
    # the null threshold is the 95th percentile: about 5% of benign-vs-benign draws exceed it
    assert det.null_quantile(60) > 0


def test_window_uses_most_recent_queries(tmp_path: Path) -> None:
    ref = _events([(f"r{i % 20}", f"benign q {i}") for i in range(400)])
    det = MMDBaselineDetector(window=30, null_draws=100, embedder=_fake_embedder).fit(ref)
    rows = [("a", f"attack old {i}") for i in range(50)] + [("a", f"benign new {i}")
                                                            for i in range(30)]
    assert det.decision_function(_events(rows))["a"] < 1.0  # only the benign tail is seen


def test_embeddings_are_cached_on_disk(tmp_path: Path) -> None:
    calls: list[int] = []

    def counting(texts):
        calls.append(len(texts))
        return _fake_embedder(texts)

    cache = EmbeddingCache(tmp_path, counting)
    a = cache.embed(["x", "y", "x"])
    assert calls == [2] and np.allclose(a[0], a[2])
    again = EmbeddingCache(tmp_path, counting)
    b = again.embed(["y", "x"])
    assert calls == [2]  # nothing re-embedded: read from disk
    assert np.allclose(b, a[[1, 0]])


def test_accounts_below_min_queries_are_not_scored() -> None:
    ref = _events([(f"r{i % 10}", f"benign q {i}") for i in range(100)])
    det = MMDBaselineDetector(window=50, null_draws=50, min_queries=5,
                              embedder=_fake_embedder).fit(ref)
    assert "tiny" not in det.decision_function(_events([("tiny", "attack 1"),
                                                        ("tiny", "attack 2")]))


def test_unfitted_detector_says_so() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        MMDBaselineDetector().decision_function(_events([("a", "x")] * 10))
