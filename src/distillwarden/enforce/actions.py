"""Graduated enforcement actions on one account or a whole cluster.

``flag`` (human review, no change for the customer) < ``warn`` < ``throttle`` < ``suspend``
(pending investigation) < ``terminate`` (keys revoked); ``reinstate`` brings an account back,
optionally under a stricter licence. Every change goes through :mod:`distillwarden.store.services`,
so it lands in the hash-chained audit log and in the change feed gateways follow.

:func:`take_action` is what an analyst (CLI, API, console) calls; :func:`apply_policy`
evaluates a policy on findings. Both plan first and change nothing when any target is
unknown or two actions conflict; then they apply every change inside one savepoint, so a
failure part-way leaves the store as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..store import audit, services
from ..store.errors import InvalidInput, NotFound, StoreError
from ..store.models import Cluster, Finding, Organization, StatusChange
from . import cases as case_ops
from .notices import send_notice
from .policy import AccountFacts, FindingFacts, Policy, action_rank

__all__ = [
    "ACTIONS",
    "ActionRequest",
    "STATUS_FOR_ACTION",
    "ConflictingActions",
    "EnforcementError",
    "PlannedAction",
    "apply_policy",
    "plan_policy",
    "resolve_targets",
    "take_action",
    "take_actions",
]

ACTIONS = ("flag", "warn", "throttle", "suspend", "terminate", "reinstate")

#: The account status each action sets (``flag`` changes no status).
STATUS_FOR_ACTION: dict[str, str | None] = {
    "flag": None,
    "warn": "warned",
    "throttle": "throttled",
    "suspend": "suspended",
    "terminate": "terminated",
    "reinstate": "active",
}

_STATUS_RANK = {"active": 0, "warned": 1, "throttled": 2, "suspended": 3, "terminated": 4}
_OFFENCE_STATUSES = ("warned", "throttled", "suspended", "terminated")


class EnforcementError(StoreError, ValueError):
    """An action cannot be planned or applied; nothing was changed."""

    code = "enforcement_error"


class ConflictingActions(EnforcementError):
    """Two requested actions contradict each other for one account; nothing was changed."""

    code = "conflicting_actions"


@dataclass
class PlannedAction:
    """One action on one account: what a dry run shows and what applying did."""

    org_id: str
    action: str
    reason: str
    current_status: str
    new_status: str | None
    rule_id: str | None = None
    finding_ids: list[str] = field(default_factory=list)
    cluster_id: str | None = None
    scope: str = "account"
    requested: str | None = None
    capped_by: str | None = None
    throttle_factor: float | None = None
    notify: bool = True
    open_case: bool = True
    conditions: str | None = None
    licence_changes: dict[str, Any] | None = None
    skipped: str | None = None
    case_id: str | None = None
    applied: bool = False

    @property
    def changes_status(self) -> bool:
        return self.skipped is None and self.new_status is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_targets(
    session: Session, *, org_ids: Sequence[str] = (), cluster_id: str | None = None
) -> list[Organization]:
    """The organizations named and/or the members of a cluster; unknown ids are one error
    listing all of them."""
    ids = list(dict.fromkeys(org_ids))
    if cluster_id is not None:
        cluster = session.get(Cluster, cluster_id)
        if cluster is None:
            raise NotFound(
                f"unknown cluster {cluster_id!r}; clusters come from `distillwarden detect`"
            )
        ids += [str(m) for m in cluster.members or [] if str(m) not in ids]
    if not ids:
        raise InvalidInput("name at least one organization or a cluster with members")
    orgs = {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(ids)))}
    missing = [i for i in ids if i not in orgs]
    if missing:
        raise NotFound(
            f"unknown organization(s) {missing}; nothing was changed. "
            "List them with `distillwarden org list`"
        )
    return [orgs[i] for i in ids]


def _plan_one(
    org: Organization, action: str, reason: str, *, escalate_only: bool, **extra: Any
) -> PlannedAction:
    new_status = STATUS_FOR_ACTION[action]
    p = PlannedAction(
        org_id=org.id, action=action, reason=reason, current_status=org.status,
        new_status=new_status, **extra,
    )
    if org.status == "terminated" and action != "reinstate":
        p.skipped = "account is terminated; only reinstate applies"
    elif new_status is None:
        pass
    elif action == "reinstate":
        if org.status == "active":
            p.skipped = "account is already active"
    elif org.status == new_status and not (
        action == "throttle" and p.throttle_factor not in (None, org.throttle_factor)
    ):
        p.skipped = f"account is already {org.status}"
    elif escalate_only and _STATUS_RANK[org.status] > _STATUS_RANK[new_status]:
        p.skipped = f"account is already {org.status}, a stricter status"
    return p


def _check_conflicts(plans: Iterable[PlannedAction]) -> None:
    """One action per account per request: contradictions and duplicates are rejected."""
    by_org: dict[str, list[str]] = {}
    for p in plans:
        by_org.setdefault(p.org_id, []).append(p.action)
    bad = {o: sorted(set(a)) for o, a in by_org.items() if "reinstate" in a and len(set(a)) > 1}
    if bad:
        raise ConflictingActions(
            f"conflicting actions for {bad}: an account cannot be reinstated and sanctioned "
            "at once; nothing was changed. Split them into separate decisions"
        )
    multi = {o: a for o, a in by_org.items() if len(a) > 1}
    if multi:
        raise ConflictingActions(
            f"several actions for one account {multi} (a cluster includes its members); "
            "nothing was changed. Request one action per account"
        )


@contextlib.contextmanager
def _atomic(session: Session) -> Iterator[None]:
    """All-or-nothing inside the caller's transaction (a savepoint)."""
    nested = session.begin_nested()
    try:
        yield
    except BaseException:
        nested.rollback()
        raise
    nested.commit()


def _execute(
    session: Session,
    plans: Sequence[PlannedAction],
    *,
    actor: str,
    outbox_dir: Path | None = None,
) -> None:
    for p in plans:
        if p.skipped is not None:
            continue
        cid = p.case_id
        cluster = session.get(Cluster, p.cluster_id) if p.cluster_id else None
        known_findings = [f for f in p.finding_ids if session.get(Finding, f) is not None]
        if cid is None and p.open_case and p.scope == "cluster" and cluster is not None:
            case, _ = case_ops.open_case_for_cluster(
                session, cluster.id, actor=actor, reason=p.reason, finding_ids=known_findings,
                title=f"{p.action.capitalize()} of cluster {cluster.id} "
                f"({len(cluster.members or [])} accounts) pending investigation",
            )
            cid = case.id
        elif cid is None and p.open_case and p.action in ("flag", "suspend", "terminate"):
            title = {
                "flag": f"Review {p.org_id}",
                "suspend": f"Suspension of {p.org_id} pending investigation",
                "terminate": f"Termination of {p.org_id}",
            }[p.action]
            case, _ = case_ops.open_case_for(
                session, p.org_id, title=title, actor=actor, reason=p.reason,
                finding_ids=known_findings, cluster_id=cluster.id if cluster else None,
            )
            cid = case.id
        p.case_id = cid
        if p.action == "reinstate":
            services.reinstate(
                session, p.org_id, actor=actor, reason=p.reason, conditions=p.conditions,
                licence_changes=p.licence_changes, case_id=cid,
            )
        elif p.new_status is not None:
            services.set_status(
                session, p.org_id, p.new_status, actor=actor, reason=p.reason, case_id=cid,
                throttle_factor=p.throttle_factor if p.action == "throttle" else None,
            )
        else:
            audit.append(
                session, actor=actor, action="org.flag", subject_type="organization",
                subject_id=p.org_id, reason=p.reason,
                payload={"case_id": cid, "finding_ids": p.finding_ids, "rule_id": p.rule_id},
            )
        for fid in p.finding_ids:
            f = session.get(Finding, fid)
            if f is not None:
                f.state = "flagged" if p.action == "flag" else "actioned"
        if cid is not None:
            case_ops.record_action(
                session, case_ops.get_case(session, cid),
                {"org_id": p.org_id, "action": p.action, "from": p.current_status,
                 "to": p.new_status, "rule_id": p.rule_id, "finding_ids": p.finding_ids},
                actor=actor, reason=p.reason,
            )
        if p.notify and p.action != "flag":
            send_notice(session, p.org_id, p.action, reason=p.reason, case_id=cid,
                        conditions=p.conditions, outbox_dir=outbox_dir)
        p.applied = True
    session.flush()


@dataclass(frozen=True)
class ActionRequest:
    """One requested action (for :func:`take_actions`)."""

    action: str
    reason: str
    org_ids: Sequence[str] = ()
    cluster_id: str | None = None
    case_id: str | None = None
    throttle_factor: float | None = None
    conditions: str | None = None
    licence_changes: Mapping[str, Any] | None = None
    notify: bool = True


def _plan_request(session: Session, r: ActionRequest) -> list[PlannedAction]:
    if r.action not in ACTIONS:
        raise InvalidInput(f"unknown action {r.action!r}; use one of {', '.join(ACTIONS)}")
    if not r.reason or not r.reason.strip():
        raise InvalidInput("every action needs a reason; it is shown to auditors")
    if r.throttle_factor is not None and r.action != "throttle":
        raise InvalidInput("throttle_factor only applies to the throttle action")
    if (r.conditions or r.licence_changes) and r.action != "reinstate":
        raise InvalidInput("conditions and licence changes apply to reinstate only")
    if r.case_id is not None:
        case_ops.get_case(session, r.case_id)
    orgs = resolve_targets(session, org_ids=r.org_ids, cluster_id=r.cluster_id)
    return [
        _plan_one(o, r.action, r.reason.strip(), escalate_only=False, cluster_id=r.cluster_id,
                  throttle_factor=r.throttle_factor, notify=r.notify, case_id=r.case_id,
                  conditions=r.conditions,
                  licence_changes=dict(r.licence_changes) if r.licence_changes else None)
        for o in orgs
    ]


def take_actions(
    session: Session,
    requests: Sequence[ActionRequest],
    *,
    actor: str,
    dry_run: bool = False,
    skip_noop: bool = False,
    outbox_dir: Path | None = None,
) -> list[PlannedAction]:
    """Several analyst actions at once, all or nothing.

    Every target is resolved and every plan checked before anything changes: unknown
    accounts or clusters (:class:`NotFound`), two actions for one account, e.g. a cluster
    suspension and a warning for one of its members (:class:`ConflictingActions`), or an
    account already in the requested state (:class:`EnforcementError`, unless
    ``skip_noop``) change nothing. ``dry_run`` returns the plan.
    """
    if not actor or not actor.strip():
        raise InvalidInput("every action needs an actor (who takes it)")
    if not requests:
        raise InvalidInput("no action requested")
    plans = [p for r in requests for p in _plan_request(session, r)]
    _check_conflicts(plans)
    noop = [p for p in plans if p.skipped]
    if noop and not skip_noop:
        raise EnforcementError(
            "nothing was changed: "
            + "; ".join(f"{p.org_id}: {p.skipped}" for p in noop)
            + (". Leave those accounts out" if len(noop) < len(plans) else "")
        )
    if dry_run:
        return plans
    with _atomic(session):
        _execute(session, plans, actor=actor, outbox_dir=outbox_dir)
    return plans


def take_action(
    session: Session,
    action: str,
    *,
    org_ids: Sequence[str] = (),
    cluster_id: str | None = None,
    actor: str,
    reason: str,
    case_id: str | None = None,
    throttle_factor: float | None = None,
    conditions: str | None = None,
    licence_changes: Mapping[str, Any] | None = None,
    notify: bool = True,
    dry_run: bool = False,
    skip_noop: bool = False,
    outbox_dir: Path | None = None,
) -> list[PlannedAction]:
    """An analyst's action on accounts and/or a whole cluster, all or nothing.

    Raises :class:`NotFound` for unknown accounts or clusters and :class:`EnforcementError`
    when an account is already in the requested state (unless ``skip_noop``); in both cases
    nothing changes. ``dry_run`` returns the plan without changing anything.
    """
    req = ActionRequest(action=action, reason=reason, org_ids=org_ids, cluster_id=cluster_id,
                        case_id=case_id, throttle_factor=throttle_factor,
                        conditions=conditions, licence_changes=licence_changes, notify=notify)
    return take_actions(session, [req], actor=actor, dry_run=dry_run, skip_noop=skip_noop,
                        outbox_dir=outbox_dir)


# --- policy -----------------------------------------------------------------------------


def _signal_values(signals: Mapping[str, Any] | None) -> dict[str, float]:
    """Signal name -> value, from plain numbers or detect's ``{"value": …, "p_value": …}``."""
    out: dict[str, float] = {}
    for k, v in (signals or {}).items():
        raw = v.get("value") if isinstance(v, Mapping) else v
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            out[str(k)] = float(raw)
    return out


def _recorded_cluster_size(evidence: Mapping[str, Any] | None) -> int | None:
    size = ((evidence or {}).get("cluster") or {}).get("size")
    return max(1, size) if isinstance(size, int) else None


#: Fields of a detect finding record (``FindingRecord.as_dict``) that rules do not look at.
_RECORD_ONLY = ("evidence", "window_start", "window_end", "state", "created_at", "extra")


def _finding_facts(session: Session, f: Finding | Mapping[str, Any]) -> FindingFacts:
    if isinstance(f, Finding):
        size = 1
        if f.cluster_id:
            cluster = session.get(Cluster, f.cluster_id)
            if cluster is not None:
                size = max(1, len(cluster.members or []))
            else:
                size = _recorded_cluster_size(f.evidence) or 1
        return FindingFacts(
            org_id=f.org_id, risk=float(f.risk), p_value=f.p_value,
            threshold_fpr=f.threshold_fpr, detector=f.detector,
            signals=_signal_values(f.signals), cluster_id=f.cluster_id, cluster_size=size,
            finding_id=f.id,
        )
    if "org_id" not in f:
        raise InvalidInput(f"a finding needs an org_id: {dict(f)!r}")
    data = {k: v for k, v in f.items() if k not in _RECORD_ONLY}
    data["signals"] = _signal_values(f.get("signals"))
    if "cluster_size" not in data and f.get("cluster_id"):
        cluster = session.get(Cluster, str(f["cluster_id"]))
        recorded = (len(cluster.members or []) if cluster is not None
                    else _recorded_cluster_size(f.get("evidence")))
        if recorded:
            data["cluster_size"] = recorded
    try:
        return FindingFacts.from_mapping(data, org_id=str(f["org_id"]))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"finding for {f['org_id']!r} is malformed: {exc}") from exc


def account_facts(session: Session, org: Organization) -> AccountFacts:
    """Tier, licence, channel and number of past sanctions of an account."""
    lic = services.active_licence(session, org.id)
    offences = session.scalar(
        select(func.count()).select_from(StatusChange).where(
            StatusChange.org_id == org.id, StatusChange.new_status.in_(_OFFENCE_STATUSES)
        )
    )
    return AccountFacts(
        org_id=org.id, tier=org.tier, licence=lic.name if lic else "none",
        channel=lic.channel if lic else "none", repeat_offences=int(offences or 0),
    )


def _describe(ff: FindingFacts) -> str:
    parts = [f"risk {ff.risk:.2f}"]
    if ff.p_value is not None:
        parts.append(f"p={ff.p_value:.2g}")
    if ff.cluster_id:
        parts.append(f"cluster {ff.cluster_id} of {ff.cluster_size}")
    return ", ".join(parts)


def plan_policy(
    session: Session, findings: Iterable[Finding | Mapping[str, Any]], policy: Policy
) -> list[PlannedAction]:
    """What ``policy`` would do to ``findings``: one planned action per affected account.

    Several findings (or a cluster-wide rule and an account rule) for one account combine by
    the policy's order: the most severe action wins. Policy actions only escalate: an
    account already in a stricter status is left alone (the plan says so).
    """
    items = [_finding_facts(session, f) for f in findings]
    orgs = {o.id: o for o in session.scalars(
        select(Organization).where(Organization.id.in_({i.org_id for i in items}))
    )}
    missing = sorted({i.org_id for i in items} - set(orgs))
    if missing:
        raise NotFound(
            f"findings name unknown organization(s) {missing}; nothing was changed. "
            "Import or create the accounts first"
        )
    facts: dict[str, AccountFacts] = {}

    def facts_for(org: Organization) -> AccountFacts:
        if org.id not in facts:
            facts[org.id] = account_facts(session, org)
        return facts[org.id]

    best: dict[str, PlannedAction] = {}
    for ff in items:
        org = orgs[ff.org_id]
        d = policy.decide(ff, facts_for(org))
        if d.rule is None:
            continue
        targets = [org]
        scope = "account"
        if (d.rule.then.scope == "cluster" and ff.cluster_id
                and session.get(Cluster, ff.cluster_id) is not None):
            targets = resolve_targets(session, org_ids=[org.id], cluster_id=ff.cluster_id)
            scope = "cluster"
        for target in targets:
            td = d if target.id == org.id else policy.decide(ff, facts_for(target))
            if td.rule is None or td.action == "none":
                continue
            via = "" if target.id == org.id else f" (cluster member of {org.id})"
            reason = (
                f"policy {policy.name} v{policy.version}, rule {d.rule.id}: "
                f"{' '.join(d.rule.description.split())} [{_describe(ff)}]{via}"
            )
            if td.capped_by:
                reason += f"; capped at {td.action} by override {td.capped_by}"
            fids = [ff.finding_id] if ff.finding_id else []
            plan = _plan_one(
                target, td.action, reason, escalate_only=True, rule_id=d.rule.id,
                finding_ids=fids, cluster_id=ff.cluster_id, scope=scope,
                requested=td.requested,
                capped_by=td.capped_by,
                throttle_factor=d.rule.then.throttle_factor if td.action == "throttle" else None,
                notify=d.rule.then.notify, open_case=d.rule.then.open_case,
            )
            prev = best.get(target.id)
            if prev is None or action_rank(plan.action) > action_rank(prev.action):
                if prev is not None:
                    plan.finding_ids = list(dict.fromkeys(prev.finding_ids + plan.finding_ids))
                best[target.id] = plan
            else:
                prev.finding_ids = list(dict.fromkeys(prev.finding_ids + plan.finding_ids))
    return list(best.values())


def apply_policy(
    session: Session,
    findings: Iterable[Finding | Mapping[str, Any]],
    policy: Policy,
    *,
    actor: str,
    dry_run: bool = False,
    outbox_dir: Path | None = None,
) -> list[PlannedAction]:
    """Evaluate ``policy`` on ``findings`` and (unless ``dry_run``) carry out the result.

    Returns the planned actions (``applied`` set on those carried out; ``skipped`` says why
    an account was left alone). Unknown accounts raise before anything changes; all changes
    happen in one savepoint of the caller's transaction, and a ``policy.apply`` audit entry
    records the run. The caller commits.
    """
    if not actor or not actor.strip():
        raise InvalidInput("every policy run needs an actor (e.g. 'policy:default')")
    plans = plan_policy(session, findings, policy)
    _check_conflicts(plans)
    if dry_run:
        return plans
    with _atomic(session):
        _execute(session, plans, actor=actor, outbox_dir=outbox_dir)
        audit.append(
            session, actor=actor, action="policy.apply", subject_type="policy",
            subject_id=policy.name, reason=f"policy {policy.name} v{policy.version} applied",
            payload={
                "version": policy.version,
                "actions": [
                    {"org_id": p.org_id, "action": p.action, "rule_id": p.rule_id,
                     "skipped": p.skipped, "case_id": p.case_id}
                    for p in plans
                ],
            },
        )
    return plans
