"""Evaluation harness: measure any detector with the estimator API on labelled traffic.

``evaluate(detector_or_mapping, dataset)`` fits on benign reference accounts, calibrates
thresholds on held-apart benign accounts and reports TPR at fixed FPR, ROC AUC, time to
detection and cluster recovery; ``write_report`` writes JSON + HTML; ``MMDBaselineDetector``
is the published MMD baseline (see docs/evaluation.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "DetectorResult",
    "EvaluationReport",
    "MMDBaselineDetector",
    "evaluate",
    "split_accounts",
    "write_report",
]

if TYPE_CHECKING:
    from .harness import DetectorResult, EvaluationReport, evaluate
    from .mmd_baseline import MMDBaselineDetector
    from .report import write_report
    from .splits import split_accounts

_WHERE = {
    "DetectorResult": ".harness",
    "EvaluationReport": ".harness",
    "evaluate": ".harness",
    "MMDBaselineDetector": ".mmd_baseline",
    "write_report": ".report",
    "split_accounts": ".splits",
}


def __getattr__(name: str) -> Any:
    """Import lazily: matplotlib and the embedding model load only when used."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
