"""Store services: the only way the admin API, CLI, console and enforcement change accounts.

Every function takes a session and works inside the caller's transaction; every change
appends to the hash-chained audit log and to the change feed (which gateways poll) in that
same transaction, so either all of it commits or none of it does. Nothing is deleted:
keys are revoked, licences deactivated, statuses changed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from . import audit
from .errors import Conflict, InvalidInput, InvalidTransition, NotFound, StoreError
from .keys import display_prefix, generate_api_key, hash_api_key
from .models import (
    ACCOUNT_STATUSES,
    ApiKey,
    Case,
    ChangeFeed,
    Cluster,
    Finding,
    Licence,
    Organization,
    StatusChange,
    utcnow,
)
from .validation import (
    normalize_channel,
    normalize_datetime,
    normalize_limit,
    normalize_models,
    normalize_permitted_uses,
    normalize_regions,
    require_text,
    validate_id,
)

__all__ = [
    "CHANGE_CHANNEL",
    "Conflict",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "StoreError",
    "active_licence",
    "create_api_key",
    "create_org",
    "get_case",
    "get_org",
    "latest_change_seq",
    "latest_risk",
    "licence_dict",
    "list_api_keys",
    "list_cases",
    "list_clusters",
    "list_findings",
    "list_licences",
    "list_orgs",
    "org_dict",
    "record_change",
    "reinstate",
    "revoke_api_key",
    "set_licence",
    "set_status",
    "status_history",
    "take_changes",
    "update_org",
]

#: PostgreSQL NOTIFY channel on which each change-feed row is announced (``kind:subject``).
CHANGE_CHANNEL = "distillwarden_changes"

_TIER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


_CHANGES_KEY = "distillwarden.changes"


def record_change(session: Session, kind: str, subject_id: str) -> ChangeFeed:
    """Append to the change feed that gateways poll (and, on PostgreSQL, NOTIFY it on commit).

    The change is also remembered on the session (:func:`take_changes`) so the caller can
    push it to gateways over Redis once the transaction has committed.
    """
    row = ChangeFeed(kind=kind, subject_id=subject_id, at=utcnow())
    session.add(row)
    session.flush()
    session.info.setdefault(_CHANGES_KEY, []).append((kind, subject_id))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:ch, :msg)"),
            {"ch": CHANGE_CHANNEL, "msg": f"{row.seq}:{kind}:{subject_id}"},
        )
    return row


def take_changes(session: Session) -> list[tuple[str, str]]:
    """The ``(kind, subject_id)`` changes recorded on this session so far, forgetting them."""
    return list(session.info.pop(_CHANGES_KEY, []))


def latest_change_seq(session: Session) -> int:
    """The highest change-feed sequence number (0 when empty)."""
    return int(session.scalar(select(func.max(ChangeFeed.seq))) or 0)


def _check_actor(actor: str) -> str:
    return require_text(actor, "actor (who makes the change)", max_len=200)


# --------------------------------------------------------------------------- organizations


def org_dict(org: Organization) -> dict[str, Any]:
    """An organization as plain JSON values (for audit payloads, the API and the CLI)."""
    return audit.jsonable(
        {
            "id": org.id,
            "name": org.name,
            "tier": org.tier,
            "contact_email": org.contact_email,
            "home_region": org.home_region,
            "payment_fingerprint_hash": org.payment_fingerprint_hash,
            "status": org.status,
            "status_reason": org.status_reason,
            "status_actor": org.status_actor,
            "status_changed_at": org.status_changed_at,
            "throttle_factor": org.throttle_factor,
            "metadata": org.metadata_ or {},
            "created_at": org.created_at,
        }
    )


def _check_org_fields(
    *,
    tier: str | None,
    contact_email: str | None,
    home_region: str | None,
    payment_fingerprint_hash: str | None,
    metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if tier is not None:
        if not _TIER_RE.match(tier):
            raise InvalidInput(
                f"tier {tier!r} must be a lower-case word such as 'standard' or 'strategic'"
            )
        out["tier"] = tier
    if contact_email is not None:
        email = contact_email.strip()
        if email and (email.count("@") != 1 or " " in email or len(email) > 320):
            raise InvalidInput(f"contact email {contact_email!r} is not an e-mail address")
        out["contact_email"] = email or None
    if home_region is not None:
        out["home_region"] = normalize_regions([home_region])[0] if home_region else None
    if payment_fingerprint_hash is not None:
        if len(payment_fingerprint_hash) > 64:
            raise InvalidInput(
                "payment_fingerprint_hash must be a hash of at most 64 characters, not the "
                "raw payment fingerprint (hash it with distillwarden.events.record.hash_identifier)"
            )
        out["payment_fingerprint_hash"] = payment_fingerprint_hash or None
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidInput("metadata must be a mapping of names to JSON values")
        meta = dict(metadata)
        if meta.get("signed_up") is not None:
            # the account's sign-up time, which the detector's linkage reads for sign-up bursts
            if not isinstance(meta["signed_up"], str | datetime):
                raise InvalidInput("metadata signed_up must be the sign-up time as an ISO-8601 "
                                   "string, e.g. 2026-01-31T12:00:00Z")
            when = normalize_datetime(meta["signed_up"], "metadata signed_up")
            meta["signed_up"] = when.isoformat() if when is not None else None
        out["metadata_"] = audit.jsonable(meta)
    return out


def create_org(
    session: Session,
    *,
    name: str,
    org_id: str | None = None,
    tier: str = "standard",
    contact_email: str | None = None,
    home_region: str | None = None,
    payment_fingerprint_hash: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    actor: str,
    reason: str = "created",
) -> Organization:
    """Create an active organization (no licence yet: set one with :func:`set_licence`)."""
    actor = _check_actor(actor)
    name = require_text(name, "organization name", max_len=200)
    org_id = validate_id(org_id, "organization id") if org_id else _new_id("org")
    if session.get(Organization, org_id) is not None:
        raise Conflict(f"organization {org_id!r} already exists; pick another id or update it")
    fields = _check_org_fields(
        tier=tier,
        contact_email=contact_email,
        home_region=home_region,
        payment_fingerprint_hash=payment_fingerprint_hash,
        metadata=metadata or {},
    )
    now = utcnow()
    org = Organization(
        id=org_id,
        name=name,
        status="active",
        status_reason=reason,
        status_actor=actor,
        status_changed_at=now,
        created_at=now,
        **fields,
    )
    session.add(org)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="org.create",
        subject_type="organization",
        subject_id=org_id,
        reason=reason,
        payload=org_dict(org),
    )
    record_change(session, "org", org_id)
    return org


def get_org(session: Session, org_id: str) -> Organization:
    """The organization, or :class:`NotFound` with a hint."""
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"unknown organization {org_id!r}; list them with `distillwarden org list`")
    return org


def _lock_org(session: Session, org_id: str) -> Organization:
    """The organization, locked for this transaction and freshly read, so that two
    concurrent changes cannot both start from the same old status (row lock on
    PostgreSQL; SQLite's write lock, taken by the no-op update)."""
    session.execute(
        update(Organization).where(Organization.id == org_id).values(status=Organization.status)
    )
    org = session.get(Organization, org_id, populate_existing=True)
    if org is None:
        raise NotFound(f"unknown organization {org_id!r}; list them with `distillwarden org list`")
    return org


def list_orgs(
    session: Session, *, status: str | None = None, limit: int | None = None, offset: int = 0
) -> list[Organization]:
    """Organizations by creation time, optionally only those with one status."""
    q = select(Organization).order_by(Organization.created_at, Organization.id)
    if status is not None:
        _check_status(status)
        q = q.where(Organization.status == status)
    if offset:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list(session.scalars(q))


def update_org(
    session: Session,
    org_id: str,
    *,
    name: str | None = None,
    tier: str | None = None,
    contact_email: str | None = None,
    home_region: str | None = None,
    payment_fingerprint_hash: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    actor: str,
    reason: str = "updated",
) -> Organization:
    """Change an organization's descriptive fields (not its status: see :func:`set_status`)."""
    actor = _check_actor(actor)
    org = _lock_org(session, org_id)
    fields = _check_org_fields(
        tier=tier,
        contact_email=contact_email,
        home_region=home_region,
        payment_fingerprint_hash=payment_fingerprint_hash,
        metadata=metadata,
    )
    if name is not None:
        fields["name"] = require_text(name, "organization name", max_len=200)
    before = org_dict(org)
    for key, value in fields.items():
        setattr(org, key, value)
    session.flush()
    after = org_dict(org)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if not changed:
        return org
    audit.append(
        session,
        actor=actor,
        action="org.update",
        subject_type="organization",
        subject_id=org_id,
        reason=reason,
        payload={"changed": changed},
    )
    record_change(session, "org", org_id)
    return org


# --------------------------------------------------------------------------- API keys


def create_api_key(
    session: Session,
    secret: bytes,
    org_id: str,
    *,
    name: str | None = None,
    expires_at: datetime | str | None = None,
    requests_per_min: int | None = None,
    tokens_per_min: int | None = None,
    actor: str,
) -> tuple[ApiKey, str]:
    """Issue a key; returns the row and the plaintext key, which is never stored or shown
    again (only its HMAC with the installation ``secret`` and a display prefix are kept)."""
    actor = _check_actor(actor)
    org = _lock_org(session, org_id)
    if org.status == "terminated":
        raise InvalidTransition(
            f"organization {org_id!r} is terminated; reinstate it before issuing keys"
        )
    if not secret:
        raise InvalidInput("the installation secret is empty; set `secret:` in the config")
    expiry = normalize_datetime(expires_at, "expires_at")
    if expiry is not None and expiry <= utcnow():
        raise InvalidInput(f"expires_at {expiry.isoformat()} is in the past")
    plaintext = generate_api_key()
    key = ApiKey(
        id=_new_id("key"),
        org_id=org_id,
        name=name.strip() if name else None,
        prefix=display_prefix(plaintext),
        key_hash=hash_api_key(secret, plaintext),
        created_at=utcnow(),
        expires_at=expiry,
        requests_per_min=normalize_limit(requests_per_min, "requests_per_min"),
        tokens_per_min=normalize_limit(tokens_per_min, "tokens_per_min"),
    )
    session.add(key)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="key.create",
        subject_type="api_key",
        subject_id=key.id,
        reason=f"key for {org_id}",
        payload={
            "org_id": org_id,
            "prefix": key.prefix,
            "name": key.name,
            "expires_at": expiry,
            "requests_per_min": key.requests_per_min,
            "tokens_per_min": key.tokens_per_min,
        },
    )
    record_change(session, "key", key.id)
    return key, plaintext


def list_api_keys(
    session: Session, org_id: str | None = None, *, include_revoked: bool = True
) -> list[ApiKey]:
    """Keys (never secrets), newest first; for one organization when ``org_id`` is given."""
    q = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)
    if org_id is not None:
        get_org(session, org_id)
        q = q.where(ApiKey.org_id == org_id)
    if not include_revoked:
        q = q.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(q))


def revoke_api_key(session: Session, key_id: str, *, actor: str, reason: str) -> ApiKey:
    """Revoke a key at once; a revoked key is kept (for the record) but never works again."""
    actor = _check_actor(actor)
    reason = require_text(reason, "reason")
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"unknown API key {key_id!r}; list keys with `distillwarden key list`")
    if key.revoked_at is not None:
        raise InvalidTransition(f"API key {key_id!r} is already revoked")
    _revoke(session, key, actor=actor, reason=reason)
    return key


def _revoke(session: Session, key: ApiKey, *, actor: str, reason: str) -> None:
    key.revoked_at = utcnow()
    key.revoked_reason = reason
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="key.revoke",
        subject_type="api_key",
        subject_id=key.id,
        reason=reason,
        payload={"org_id": key.org_id, "prefix": key.prefix},
    )
    record_change(session, "key", key.id)


# --------------------------------------------------------------------------- licences


def licence_dict(lic: Licence) -> dict[str, Any]:
    """A licence as plain JSON values."""
    return audit.jsonable(
        {
            "id": lic.id,
            "org_id": lic.org_id,
            "name": lic.name,
            "channel": lic.channel,
            "regions": lic.regions,
            "permitted_uses": lic.permitted_uses,
            "models": lic.models,
            "valid_from": lic.valid_from,
            "valid_until": lic.valid_until,
            "requests_per_min": lic.requests_per_min,
            "tokens_per_min": lic.tokens_per_min,
            "watermark": lic.watermark,
            "conditions": lic.conditions,
            "active": lic.active,
            "created_at": lic.created_at,
        }
    )


def active_licence(session: Session, org_id: str) -> Licence | None:
    """The organization's active licence, or None when it has none."""
    return session.scalars(
        select(Licence)
        .where(Licence.org_id == org_id, Licence.active.is_(True))
        .order_by(Licence.created_at.desc())
        .limit(1)
    ).first()


def list_licences(session: Session, org_id: str) -> list[Licence]:
    """Every licence version of an organization, newest first."""
    get_org(session, org_id)
    return list(
        session.scalars(
            select(Licence)
            .where(Licence.org_id == org_id)
            .order_by(Licence.created_at.desc(), Licence.id)
        )
    )


def _new_licence(
    session: Session,
    org_id: str,
    *,
    name: str,
    channel: str,
    regions: Iterable[str],
    permitted_uses: Iterable[str],
    models: Iterable[str],
    valid_from: datetime | str | None,
    valid_until: datetime | str | None,
    requests_per_min: int | None,
    tokens_per_min: int | None,
    watermark: Mapping[str, Any] | None,
    conditions: str | None,
    actor: str,
    reason: str,
    action: str,
) -> Licence:
    name = require_text(name, "licence name", max_len=64)
    start = normalize_datetime(valid_from, "valid_from")
    end = normalize_datetime(valid_until, "valid_until")
    if start is not None and end is not None and end <= start:
        raise InvalidInput(
            f"valid_until ({end.isoformat()}) must be after valid_from ({start.isoformat()})"
        )
    if watermark is not None and not isinstance(watermark, Mapping):
        raise InvalidInput("watermark must be a mapping of watermark settings (or omitted)")
    lic = Licence(
        id=_new_id("lic"),
        org_id=org_id,
        name=name,
        channel=normalize_channel(channel),
        regions=normalize_regions(regions),
        permitted_uses=normalize_permitted_uses(permitted_uses),
        models=normalize_models(models),
        valid_from=start,
        valid_until=end,
        requests_per_min=normalize_limit(requests_per_min, "requests_per_min"),
        tokens_per_min=normalize_limit(tokens_per_min, "tokens_per_min"),
        watermark=audit.jsonable(dict(watermark or {})),
        conditions=conditions.strip() if conditions else None,
        active=True,
        created_at=utcnow(),
    )
    previous = active_licence(session, org_id)
    for old in session.scalars(
        select(Licence).where(Licence.org_id == org_id, Licence.active.is_(True))
    ):
        old.active = False
    session.add(lic)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action=action,
        subject_type="licence",
        subject_id=org_id,
        reason=reason,
        payload={"licence": licence_dict(lic), "replaces": previous.id if previous else None},
    )
    record_change(session, "licence", org_id)
    return lic


def set_licence(
    session: Session,
    org_id: str,
    *,
    name: str = "standard",
    channel: str = "direct",
    regions: Iterable[str] = (),
    permitted_uses: Iterable[str] = ("inference",),
    models: Iterable[str] = ("*",),
    valid_from: datetime | str | None = None,
    valid_until: datetime | str | None = None,
    requests_per_min: int | None = None,
    tokens_per_min: int | None = None,
    watermark: Mapping[str, Any] | None = None,
    conditions: str | None = None,
    actor: str,
    reason: str,
) -> Licence:
    """Give an organization a new licence; the previous one is deactivated (kept on record).

    ``regions`` empty means every region; ``models`` are names or ``*`` patterns; limits
    ``None`` mean the installation defaults and 0 unlimited.
    """
    actor = _check_actor(actor)
    reason = require_text(reason, "reason")
    org = _lock_org(session, org_id)
    if org.status == "terminated":
        raise InvalidTransition(
            f"organization {org_id!r} is terminated; use reinstate (with licence changes) "
            "to bring it back under a new licence"
        )
    return _new_licence(
        session,
        org_id,
        name=name,
        channel=channel,
        regions=regions,
        permitted_uses=permitted_uses,
        models=models,
        valid_from=valid_from,
        valid_until=valid_until,
        requests_per_min=requests_per_min,
        tokens_per_min=tokens_per_min,
        watermark=watermark,
        conditions=conditions,
        actor=actor,
        reason=reason,
        action="licence.set",
    )


# --------------------------------------------------------------------------- status


def _check_status(status: str) -> str:
    if status not in ACCOUNT_STATUSES:
        raise InvalidInput(f"unknown status {status!r}; use one of {', '.join(ACCOUNT_STATUSES)}")
    return status


def _apply_status(
    session: Session,
    org: Organization,
    status: str,
    *,
    actor: str,
    reason: str,
    case_id: str | None,
    throttle_factor: float | None,
    action: str,
    extra: Mapping[str, Any] | None = None,
) -> StatusChange:
    now = utcnow()
    change = StatusChange(
        org_id=org.id,
        old_status=org.status,
        new_status=status,
        reason=reason,
        actor=actor,
        case_id=case_id,
        at=now,
    )
    org.status = status
    org.status_reason = reason
    org.status_actor = actor
    org.status_changed_at = now
    org.throttle_factor = throttle_factor if status == "throttled" else None
    session.add(change)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action=action,
        subject_type="organization",
        subject_id=org.id,
        reason=reason,
        payload={
            "from": change.old_status,
            "to": status,
            "case_id": case_id,
            "throttle_factor": org.throttle_factor,
            **dict(extra or {}),
        },
    )
    record_change(session, "status", org.id)
    return change


def set_status(
    session: Session,
    org_id: str,
    status: str,
    *,
    actor: str,
    reason: str,
    case_id: str | None = None,
    throttle_factor: float | None = None,
) -> StatusChange:
    """Change an account's status (``active``, ``warned``, ``throttled``, ``suspended``,
    ``terminated``) with a reason. Terminating revokes every key; a terminated account can
    only come back through :func:`reinstate`. ``throttle_factor`` (0-1] scales the limits of
    a throttled account (None: the installation default)."""
    actor = _check_actor(actor)
    reason = require_text(reason, "reason")
    _check_status(status)
    org = _lock_org(session, org_id)
    if case_id is not None:
        validate_id(case_id, "case id")
    if throttle_factor is not None:
        if status != "throttled":
            raise InvalidInput("throttle_factor only applies to the 'throttled' status")
        if not 0.0 < float(throttle_factor) <= 1.0:
            raise InvalidInput(f"throttle_factor must be in (0, 1], got {throttle_factor}")
        throttle_factor = float(throttle_factor)
    if org.status == "terminated":
        raise InvalidTransition(
            f"organization {org_id!r} is terminated; only reinstate can bring it back "
            "(`distillwarden status reinstate` or POST /orgs/{id}/reinstate)"
        )
    if org.status == status and not (
        status == "throttled" and throttle_factor != org.throttle_factor
    ):
        raise InvalidTransition(f"organization {org_id!r} is already {status}")
    change = _apply_status(
        session,
        org,
        status,
        actor=actor,
        reason=reason,
        case_id=case_id,
        throttle_factor=throttle_factor,
        action="status.set",
    )
    if status == "terminated":
        for key in session.scalars(
            select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None))
        ):
            _revoke(session, key, actor=actor, reason=f"account terminated: {reason}")
    return change


def reinstate(
    session: Session,
    org_id: str,
    *,
    actor: str,
    reason: str,
    conditions: str | None = None,
    licence_changes: Mapping[str, Any] | None = None,
    case_id: str | None = None,
) -> StatusChange:
    """Bring a warned, throttled, suspended or terminated account back to ``active``.

    ``conditions`` (e.g. "evaluation use only under a signed addendum") and
    ``licence_changes`` (any :func:`set_licence` field, applied on top of the current
    licence) create a new licence version. Keys revoked at termination stay revoked: issue
    new ones.
    """
    actor = _check_actor(actor)
    reason = require_text(reason, "reason")
    org = _lock_org(session, org_id)
    if org.status == "active":
        raise InvalidTransition(f"organization {org_id!r} is already active")
    changes = dict(licence_changes or {})
    allowed = {
        "name",
        "channel",
        "regions",
        "permitted_uses",
        "models",
        "valid_from",
        "valid_until",
        "requests_per_min",
        "tokens_per_min",
        "watermark",
    }
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(f"unknown licence fields {unknown}; allowed: {sorted(allowed)}")
    new_licence: Licence | None = None
    if conditions or changes:
        current = active_licence(session, org_id)
        base: dict[str, Any] = (
            {k: getattr(current, k) for k in allowed} if current is not None else {}
        )
        base.update(changes)
        params: dict[str, Any] = {
            "name": base.get("name") or "standard",
            "channel": base.get("channel") or "direct",
            "regions": base.get("regions") or (),
            "permitted_uses": base.get("permitted_uses") or ("inference",),
            "models": base.get("models") or ("*",),
            "valid_from": base.get("valid_from"),
            "valid_until": base.get("valid_until"),
            "requests_per_min": base.get("requests_per_min"),
            "tokens_per_min": base.get("tokens_per_min"),
            "watermark": base.get("watermark"),
        }
        new_licence = _new_licence(
            session,
            org_id,
            conditions=conditions,
            actor=actor,
            reason=f"reinstated: {reason}",
            action="licence.set",
            **params,
        )
    return _apply_status(
        session,
        org,
        "active",
        actor=actor,
        reason=reason,
        case_id=case_id,
        throttle_factor=None,
        action="status.reinstate",
        extra={
            "conditions": conditions,
            "licence_id": new_licence.id if new_licence else None,
        },
    )


def status_history(session: Session, org_id: str) -> list[StatusChange]:
    """Every status change of an organization, oldest first."""
    get_org(session, org_id)
    return list(
        session.scalars(
            select(StatusChange)
            .where(StatusChange.org_id == org_id)
            .order_by(StatusChange.at, StatusChange.id)
        )
    )


# --------------------------------------------------------------------------- read-only views


def list_findings(
    session: Session,
    *,
    org_id: str | None = None,
    cluster_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Finding]:
    """Findings, newest first, optionally for one organization, cluster or state."""
    q = select(Finding).order_by(Finding.created_at.desc(), Finding.id)
    if org_id is not None:
        q = q.where(Finding.org_id == org_id)
    if cluster_id is not None:
        q = q.where(Finding.cluster_id == cluster_id)
    if state is not None:
        q = q.where(Finding.state == state)
    return list(session.scalars(q.offset(offset).limit(limit)))


def list_clusters(session: Session, *, limit: int = 100) -> list[Cluster]:
    """Linked account clusters, highest score first."""
    return list(
        session.scalars(select(Cluster).order_by(Cluster.score.desc(), Cluster.id).limit(limit))
    )


def list_cases(
    session: Session,
    *,
    org_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Case]:
    """Cases, most recently updated first."""
    q = select(Case).order_by(Case.updated_at.desc(), Case.id)
    if org_id is not None:
        q = q.where(Case.org_id == org_id)
    if state is not None:
        q = q.where(Case.state == state)
    return list(session.scalars(q.offset(offset).limit(limit)))


def get_case(session: Session, case_id: str) -> Case:
    """A case with its timeline entries, or :class:`NotFound`."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"unknown case {case_id!r}; list cases with GET /cases")
    return case


def latest_risk(session: Session, org_ids: Sequence[str] | None = None) -> dict[str, Finding]:
    """The most recent finding per organization (what the console shows as risk)."""
    newest = select(Finding.org_id, func.max(Finding.created_at).label("newest"))
    if org_ids is not None:
        newest = newest.where(Finding.org_id.in_(list(org_ids)))
    sub = newest.group_by(Finding.org_id).subquery()
    q = (
        select(Finding)
        .join(sub, (Finding.org_id == sub.c.org_id) & (Finding.created_at == sub.c.newest))
        .order_by(Finding.org_id, Finding.risk.desc())
    )
    out: dict[str, Finding] = {}
    for f in session.scalars(q):
        out.setdefault(f.org_id, f)
    return out
