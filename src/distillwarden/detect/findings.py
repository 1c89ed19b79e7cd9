"""Findings: what the detector concluded about an account, with the evidence an analyst
(and a dispute) needs: the signals that fired with their values and p-values, example
request ids, counts, the time range, the cluster, and the false-positive rate of the
threshold that was crossed."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from distillwarden.store.models import Cluster, Finding

from .linkage import HydraCluster
from .scoring import AccountScores
from .signals import SIGNAL_DESCRIPTIONS

__all__ = ["FindingRecord", "build_findings", "finding_id", "write_findings"]

#: a signal is named in a finding when its calibrated p-value is at most this
SIGNAL_REPORT_P = 0.01
_FEATURE_OF_SIGNAL = {
    "share_cot": "cot", "share_dataset": "dataset", "share_judge": "judge",
    "share_identity": "identity", "share_agent": "agent", "share_desens": "desens",
    "share_bench": "bench", "share_logprobs": "logprobs", "share_multi_n": "multi_n",
    "licence_use_mismatch": "bench", "bench_breadth": "bench",
}


@dataclass
class FindingRecord:
    """One finding, ready to be stored or printed."""

    id: str
    org_id: str
    cluster_id: str | None
    detector: str
    risk: float
    p_value: float
    threshold_fpr: float
    signals: dict[str, Any]
    evidence: dict[str, Any]
    window_start: datetime | None
    window_end: datetime | None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id, "org_id": self.org_id, "cluster_id": self.cluster_id,
            "detector": self.detector, "risk": self.risk, "p_value": self.p_value,
            "threshold_fpr": self.threshold_fpr, "signals": self.signals,
            "evidence": self.evidence,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
        }


def finding_id(detector: str, org_id: str, window_start: datetime | None) -> str:
    """Stable id: re-running a window (batch or incremental) updates, never duplicates."""
    ws = window_start.isoformat() if window_start else "-"
    return "fnd_" + hashlib.sha256(f"{detector}|{org_id}|{ws}".encode()).hexdigest()[:24]


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def build_findings(
    scores: AccountScores,
    *,
    threshold: float,
    fpr: float,
    detector: str,
    window_start: datetime | None,
    window_end: datetime | None,
) -> list[FindingRecord]:
    """A finding for every account whose risk reaches ``threshold`` (whose false-positive
    rate on benign traffic is ``fpr``)."""
    rows = scores.signals.to_pylist()
    out: list[FindingRecord] = []
    clusters = {c.cluster_id: c for c in scores.clusters}
    for i, row in enumerate(rows):
        risk = float(scores.risk[i])
        if not risk >= threshold:
            continue
        org = str(row["org_id"])
        named: dict[str, Any] = {}
        order = np.argsort(np.nan_to_num(scores.pvalues[i], nan=1.0))
        for j in order:
            p = float(scores.pvalues[i, j])
            if not (p <= SIGNAL_REPORT_P):
                break
            name = scores.signal_names[j]
            entry: dict[str, Any] = {
                "p_value": p,
                "value": _num(row.get(name)),
                "statistic": _num(scores.statistics[i, j]),
                "means": SIGNAL_DESCRIPTIONS.get(name, name),
            }
            feat = _FEATURE_OF_SIGNAL.get(name)
            if feat is not None:
                entry["requests"] = row.get(f"n_{feat}")
                entry["example_request_ids"] = list(row.get(f"ex_{feat}") or [])
            if feat == "bench":
                # the benchmark sets the account drew on (>= BREADTH_MIN_HITS matches each)
                entry["benchmark_sets"] = [
                    scores.benchmark_sets[k] if 0 <= k < len(scores.benchmark_sets) else str(k)
                    for k in row.get("bench_sets") or []
                ]
            named[name] = entry
        cid = scores.cluster_of.get(org)
        evidence: dict[str, Any] = {
            "requests": int(row["n_requests"]),
            "first_request": row["first_ts"].isoformat() if row.get("first_ts") else None,
            "last_request": row["last_ts"].isoformat() if row.get("last_ts") else None,
            "licence": row.get("licence"),
            "channel": row.get("channel"),
            "account_p_value": float(scores.p_account[i]),
        }
        if cid is not None and cid in clusters:
            c = clusters[cid]
            evidence["cluster"] = {
                "id": cid, "size": len(c.members), "shared": c.evidence.get("shared", {}),
                "lifted": bool(scores.p_final[i] < scores.p_account[i]),
            }
        out.append(
            FindingRecord(
                id=finding_id(detector, org, window_start),
                org_id=org,
                cluster_id=cid,
                detector=detector,
                risk=risk,
                p_value=float(scores.p_final[i]),
                threshold_fpr=fpr,
                signals=named,
                evidence=evidence,
                window_start=window_start,
                window_end=window_end,
            )
        )
    out.sort(key=lambda f: -f.risk)
    return out


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def write_findings(
    session: Session,
    findings: list[FindingRecord],
    clusters: list[HydraCluster],
    risks: dict[str, float],
) -> None:
    """Upsert findings and clusters (by id) into the store; the caller commits."""
    for c in clusters:
        score = max((risks.get(m, 0.0) for m in c.members), default=0.0)
        session.merge(
            Cluster(id=c.cluster_id, members=list(c.members), evidence=_json_safe(c.evidence),
                    score=float(score))
        )
    for f in findings:
        existing = session.get(Finding, f.id)
        state = existing.state if existing is not None else "new"
        session.merge(
            Finding(
                id=f.id, org_id=f.org_id, cluster_id=f.cluster_id, detector=f.detector,
                risk=f.risk, p_value=f.p_value, threshold_fpr=f.threshold_fpr,
                signals=_json_safe(f.signals), evidence=_json_safe(f.evidence),
                window_start=f.window_start, window_end=f.window_end, state=state,
            )
        )
