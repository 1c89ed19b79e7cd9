"""Metric helpers on small arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from distillwarden.evaluate.metrics import adjusted_rand, calibrate_threshold, roc_auc
from distillwarden.evaluate.splits import split_accounts


def test_threshold_allows_at_most_fpr_of_calibration_above() -> None:
    scores = np.arange(1000, dtype=float)  # 0..999
    t = calibrate_threshold(scores, 0.01)
    assert t.exceeding == 10 and t.value == 989.0
    assert t.backing == pytest.approx(10.0)
    t = calibrate_threshold(scores, 0.001)
    assert t.exceeding == 1 and t.value == 998.0


def test_threshold_with_too_few_accounts_is_the_maximum() -> None:
    t = calibrate_threshold(np.array([0.1, 0.5, 0.3]), 0.001)
    assert t.value == 0.5 and t.exceeding == 0 and t.backing < 1


def test_threshold_needs_scores() -> None:
    with pytest.raises(ValueError, match="no calibration scores"):
        calibrate_threshold(np.array([]), 0.01)


def test_auc_known_values() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.1, 0.2])) == 0.0
    assert roc_auc(np.array([1, 1]), np.array([0.1, 0.2])) is None


def test_adjusted_rand() -> None:
    assert adjusted_rand(["a", "a", "b", "b"], ["x", "x", "y", "y"]) == 1.0
    # the detector leaving everyone unclustered recovers nothing
    assert adjusted_rand(["a", "a", "b", "b"], [None, None, None, None]) == pytest.approx(0.0)
    assert adjusted_rand(["a"], ["x"]) is None


def test_split_uses_reference_labels_and_never_calibrates_on_attackers() -> None:
    labels = {f"b{i}": {"label": "benign", "split": "reference" if i < 10 else "traffic"}
              for i in range(100)}
    labels |= {f"a{i}": {"label": "attacker", "split": "traffic"} for i in range(20)}
    s = split_accounts(labels)
    assert s.reference == sorted(f"b{i}" for i in range(10))
    assert not set(s.attackers) & set(s.calibration + s.test_benign + s.reference)
    assert len(s.attackers) == 20
    assert 25 < len(s.calibration) < 65 and len(s.calibration) + len(s.test_benign) == 90
    assert split_accounts(labels).calibration == s.calibration  # deterministic


def test_split_without_split_field_hashes_org_ids() -> None:
    labels = {f"b{i}": {"label": "benign"} for i in range(500)}
    s = split_accounts(labels)
    assert 60 < len(s.reference) < 140


def test_split_refuses_too_few_benign() -> None:
    with pytest.raises(ValueError, match="not enough benign"):
        split_accounts({"a": {"label": "attacker"}, "b": {"label": "benign"}})
