"""Notices to a customer's contact when an action affects them: an e-mail rendered from a
Jinja2 template into an outbox folder (``.eml`` files any mail system can send) and a signed
webhook event for the provider's own systems.

No mail is sent from here: the outbox is what an operator's mail relay (or a human) picks up.
The webhook event is queued in the caller's transaction, so it exists only if the action
commits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.orm import Session

from ..store import services
from . import webhooks

__all__ = ["NOTICE_ACTIONS", "render_notice", "send_notice"]

NOTICE_ACTIONS = ("warn", "throttle", "suspend", "terminate", "reinstate")

_SUBJECTS = {
    "warn": "Notice about your API usage",
    "throttle": "Your API rate limits have been lowered",
    "suspend": "Your API account is suspended pending investigation",
    "terminate": "Your API account has been terminated",
    "reinstate": "Your API account has been reinstated",
}

_env = Environment(
    loader=PackageLoader("distillwarden.enforce", "templates"),
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


def render_notice(
    org: Any, action: str, *, licence_name: str = "standard", case_id: str | None = None,
    conditions: str | None = None, throttle_factor: float | None = None,
    now: datetime | None = None, sender: str = "trust-and-safety@localhost",
) -> EmailMessage:
    """The notice e-mail for ``action`` on ``org`` (an Organization or anything with
    ``id``, ``name`` and ``contact_email``)."""
    if action not in NOTICE_ACTIONS:
        raise ValueError(f"no customer notice for action {action!r}")
    when = now or datetime.now(UTC)
    body = _env.get_template("notice_email.txt.j2").render(
        org=org, action=action, licence_name=licence_name, case_id=case_id,
        conditions=conditions, throttle_factor=throttle_factor,
        now=when.strftime("%Y-%m-%d %H:%M UTC"),
    )
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = org.contact_email or "undisclosed-recipients:;"
    msg["Subject"] = _SUBJECTS[action] + (f" [{case_id}]" if case_id else "")
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain="distillwarden.local")
    msg.set_content(body)
    return msg


def send_notice(
    session: Session,
    org_id: str,
    action: str,
    *,
    reason: str,
    case_id: str | None = None,
    conditions: str | None = None,
    outbox_dir: Path | None = None,
) -> Path | None:
    """Write the customer's notice to ``outbox_dir`` (when given and the organization has a
    contact) and queue the ``account.<action>`` webhook event. Returns the ``.eml`` path."""
    if action not in NOTICE_ACTIONS:
        return None
    org = services.get_org(session, org_id)
    lic = services.active_licence(session, org_id)
    seq = services.latest_change_seq(session)
    payload = {
        "org_id": org.id, "org_name": org.name, "action": action, "status": org.status,
        "reason": reason, "case_id": case_id, "conditions": conditions,
        "throttle_factor": org.throttle_factor, "change_seq": seq,
    }
    webhooks.enqueue(session, f"account.{action}", payload, key=f"{action}:{org.id}:{seq}")
    if outbox_dir is None or not org.contact_email:
        return None
    msg = render_notice(
        org, action, licence_name=lic.name if lic else "standard", case_id=case_id,
        conditions=conditions, throttle_factor=org.throttle_factor,
    )
    outbox_dir.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", org.id)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = outbox_dir / f"{stamp}_{safe}_{action}_{seq}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(msg))
    tmp.replace(path)
    return path
