"""Policy versions in the store: activating one records its YAML and who activated it.

One policy is active at a time; older versions stay (inactive) for the record, and each
activation is an audit entry carrying the sha256 of the exact YAML text.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import audit
from ..store.errors import InvalidInput
from ..store.models import Policy as PolicyRow
from ..store.models import utcnow
from .policy import Policy, default_policy_path, parse_policy, run_examples

__all__ = ["activate_policy", "active_policy", "active_policy_row"]


def activate_policy(session: Session, text: str, *, actor: str, reason: str,
                    source: str = "<policy>") -> PolicyRow:
    """Validate ``text`` (including its examples, which must all pass) and make it the
    active policy. An invalid policy raises and changes nothing."""
    policy = parse_policy(text, source=source)
    failed = [r for r in run_examples(policy) if not r.passed]
    if failed:
        lines = "; ".join(
            f"rule {r.rule_id} example {r.index}: expected {r.expected}, got {r.actual}"
            for r in failed
        )
        raise InvalidInput(f"policy examples fail, not activated: {lines}. "
                           "Run `distillwarden policy test FILE`")
    if not reason or not reason.strip():
        raise InvalidInput("activating a policy needs a reason")
    for row in session.scalars(select(PolicyRow).where(PolicyRow.active.is_(True))):
        row.active = False
    row = PolicyRow(name=policy.name, yaml_text=text, active=True, created_by=actor,
                    created_at=utcnow())
    session.add(row)
    session.flush()
    audit.append(
        session, actor=actor, action="policy.activate", subject_type="policy",
        subject_id=str(row.id), reason=reason,
        payload={"name": policy.name, "version": policy.version,
                 "sha256": hashlib.sha256(text.encode()).hexdigest(),
                 "rules": [r.id for r in policy.rules],
                 "overrides": [o.id for o in policy.overrides]},
    )
    return row


def active_policy_row(session: Session) -> PolicyRow | None:
    """The active policy version, if one was activated."""
    return session.scalars(
        select(PolicyRow).where(PolicyRow.active.is_(True)).order_by(PolicyRow.id.desc())
    ).first()


def active_policy(session: Session) -> Policy:
    """The active policy, or the shipped default when none was activated."""
    row = active_policy_row(session)
    if row is None:
        return parse_policy(default_policy_path().read_text(), source=str(default_policy_path()))
    return parse_policy(row.yaml_text, source=f"policy #{row.id} ({row.name})")
