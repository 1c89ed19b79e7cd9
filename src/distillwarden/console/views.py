"""What each console page shows, assembled from the store (no HTTP here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..store import audit, services
from ..store.errors import NotFound
from ..store.models import (
    ACCOUNT_STATUSES,
    ApiKey,
    AuditEntry,
    Case,
    Cluster,
    Finding,
    Licence,
    Organization,
)

__all__ = [
    "AccountRow",
    "account_detail",
    "account_rows",
    "audit_page",
    "cluster_rows",
    "example_requests",
    "overview_counts",
    "signal_examples",
]


@dataclass
class AccountRow:
    """One line of the accounts table."""

    org: Organization
    licence: Licence | None
    risk: float | None
    risk_detector: str | None
    cluster_id: str | None
    open_cases: int
    active_keys: int


def overview_counts(session: Session) -> dict[str, int]:
    """Number of accounts per status (every status present, 0 when none)."""
    counts = dict.fromkeys(ACCOUNT_STATUSES, 0)
    for status, n in session.execute(
        select(Organization.status, func.count()).group_by(Organization.status)
    ):
        counts[status] = int(n)
    return counts


def _latest_risk_subquery() -> Any:
    """org_id -> risk of its most recent finding (the highest, if several are newest)."""
    newest = (
        select(Finding.org_id, func.max(Finding.created_at).label("newest"))
        .group_by(Finding.org_id)
        .subquery()
    )
    return (
        select(Finding.org_id, func.max(Finding.risk).label("risk"))
        .join(newest, (Finding.org_id == newest.c.org_id) & (Finding.created_at == newest.c.newest))
        .group_by(Finding.org_id)
        .subquery()
    )


def account_rows(
    session: Session,
    *,
    q: str | None = None,
    status: str | None = None,
    sort: str = "risk",
    limit: int = 200,
) -> tuple[list[AccountRow], int]:
    """One page of accounts matching a search and status filter, riskiest first (ranked in
    SQL, so the page costs the same with thousands of accounts); and how many matched."""
    risk_sq = _latest_risk_subquery()
    query = select(Organization).outerjoin(risk_sq, risk_sq.c.org_id == Organization.id)
    if status and status in ACCOUNT_STATUSES:
        query = query.where(Organization.status == status)
    if q:
        like = f"%{q.strip().lower()}%"
        query = query.where(
            func.lower(Organization.id).like(like) | func.lower(Organization.name).like(like)
        )
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    if sort == "name":
        query = query.order_by(func.lower(Organization.name), Organization.id)
    elif sort == "status":
        rank = case(
            {s: i for i, s in enumerate(reversed(ACCOUNT_STATUSES))},
            value=Organization.status,
            else_=len(ACCOUNT_STATUSES),
        )
        query = query.order_by(
            rank, risk_sq.c.risk.is_(None), risk_sq.c.risk.desc(), Organization.id
        )
    else:
        query = query.order_by(risk_sq.c.risk.is_(None), risk_sq.c.risk.desc(), Organization.id)
    orgs = list(session.scalars(query.limit(limit)))
    if not orgs:
        return [], total
    ids = [o.id for o in orgs]
    licences = {
        lic.org_id: lic
        for lic in session.scalars(
            select(Licence).where(Licence.active.is_(True), Licence.org_id.in_(ids))
        )
    }
    risk = services.latest_risk(session, ids)
    cases = dict(
        session.execute(
            select(Case.org_id, func.count())
            .where(Case.org_id.in_(ids), Case.state != "closed")
            .group_by(Case.org_id)
        ).all()
    )
    keys = dict(
        session.execute(
            select(ApiKey.org_id, func.count())
            .where(ApiKey.org_id.in_(ids), ApiKey.revoked_at.is_(None))
            .group_by(ApiKey.org_id)
        ).all()
    )
    rows = [
        AccountRow(
            org=o,
            licence=licences.get(o.id),
            risk=risk[o.id].risk if o.id in risk else None,
            risk_detector=risk[o.id].detector if o.id in risk else None,
            cluster_id=risk[o.id].cluster_id if o.id in risk else None,
            open_cases=int(cases.get(o.id, 0)),
            active_keys=int(keys.get(o.id, 0)),
        )
        for o in orgs
    ]
    return rows, total


@dataclass
class AccountDetail:
    """Everything the account page shows."""

    org: Organization
    licence: Licence | None
    licences: list[Licence]
    findings: list[Finding]
    history: list[Any]
    keys: list[ApiKey]
    cases: list[Case]
    audit: list[AuditEntry] = field(default_factory=list)
    cluster: Cluster | None = None


def account_detail(session: Session, org_id: str) -> AccountDetail:
    """The account page's data (raises NotFound for an unknown account)."""
    org = services.get_org(session, org_id)
    findings = services.list_findings(session, org_id=org_id, limit=50)
    cluster_id = next((f.cluster_id for f in findings if f.cluster_id), None)
    key_ids = [k.id for k in services.list_api_keys(session, org_id)]
    audit_rows = list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject_id.in_([org_id, *key_ids]))
            .order_by(AuditEntry.seq.desc())
            .limit(30)
        )
    )
    return AccountDetail(
        org=org,
        licence=services.active_licence(session, org_id),
        licences=services.list_licences(session, org_id),
        findings=findings,
        history=list(reversed(services.status_history(session, org_id))),
        keys=services.list_api_keys(session, org_id),
        cases=services.list_cases(session, org_id=org_id),
        audit=audit_rows,
        cluster=session.get(Cluster, cluster_id) if cluster_id else None,
    )


@dataclass
class ClusterRow:
    """A cluster with the current status of each member."""

    cluster: Cluster
    members: list[Organization]
    missing: list[str]
    by_status: dict[str, int]


def cluster_rows(session: Session, *, limit: int = 200) -> list[ClusterRow]:
    """Linked clusters, highest score first, with their members' statuses."""
    out = []
    for cluster in services.list_clusters(session, limit=limit):
        ids = [str(m) for m in (cluster.members or [])]
        members = (
            list(session.scalars(select(Organization).where(Organization.id.in_(ids))))
            if ids
            else []
        )
        found = {m.id for m in members}
        by_status: dict[str, int] = {}
        for m in members:
            by_status[m.status] = by_status.get(m.status, 0) + 1
        out.append(
            ClusterRow(
                cluster=cluster,
                members=sorted(members, key=lambda m: m.id),
                missing=[i for i in ids if i not in found],
                by_status=by_status,
            )
        )
    return out


def audit_page(
    session: Session, *, limit: int = 100
) -> tuple[audit.AuditVerification, list[AuditEntry]]:
    """The chain's verification and its latest entries, newest first."""
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)))
    return audit.verify(session), entries


#: Columns of an example request the console shows (never hashes of IPs or agents).
REQUEST_COLUMNS = (
    "event_id",
    "ts",
    "endpoint",
    "model",
    "region",
    "key_prefix",
    "last_user_text",
    "response_text",
    "status",
    "prompt_tokens",
    "completion_tokens",
)


def example_requests(
    events_dir: Path,
    org_id: str,
    event_ids: list[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """The logged requests with these ids (one account's, at most ``limit``), oldest first;
    empty when the event log is not on this machine."""
    from ..events.reader import read_events

    wanted = [str(e) for e in event_ids][:limit]
    if not wanted or not events_dir.exists():
        return []
    table = read_events(
        events_dir,
        orgs=[org_id],
        since=since - timedelta(seconds=1) if since else None,
        until=until + timedelta(seconds=1) if until else None,
        columns=list(REQUEST_COLUMNS),
    )
    table = table.filter(pc.is_in(table["event_id"], value_set=pa.array(wanted)))
    rows = sorted(table.to_pylist(), key=lambda r: r["ts"])
    return rows[:limit]


def signal_examples(session: Session, finding_id: str, signal: str) -> tuple[Finding, list[str]]:
    """A finding and the example request ids its evidence gives for one signal."""
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise NotFound(f"unknown finding {finding_id!r}")
    entry = (finding.signals or {}).get(signal)
    ids = entry.get("example_request_ids", []) if isinstance(entry, dict) else []
    return finding, [str(i) for i in ids]
