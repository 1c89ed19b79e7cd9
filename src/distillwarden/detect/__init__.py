"""Detection engine: request features, account signals, hydra linkage, calibrated scoring
and findings with evidence (see docs/detection.md)."""

from .engine import DETECTOR_NAME, DetectionRun, IncrementalDetection, run_detection
from .features import request_features
from .findings import FindingRecord, build_findings
from .linkage import HydraCluster, HydraLinker
from .scoring import AccountScores, DistillationDetector, NotFittedError
from .signals import account_signals

__all__ = [
    "DETECTOR_NAME",
    "AccountScores",
    "DetectionRun",
    "DistillationDetector",
    "FindingRecord",
    "HydraCluster",
    "HydraLinker",
    "IncrementalDetection",
    "NotFittedError",
    "account_signals",
    "build_findings",
    "request_features",
    "run_detection",
]
