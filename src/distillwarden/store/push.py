"""Push committed changes to gateway replicas over Redis (when configured).

Gateways also poll the change feed, so a failed push only delays a change until the next
poll; it never fails the request that made the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from .db import session_scope
from .services import take_changes

__all__ = ["announce", "run_and_announce"]

_log = logging.getLogger("distillwarden.store")
T = TypeVar("T")


def announce(redis_url: str | None, changes: Iterable[tuple[str, str]]) -> int:
    """Publish each distinct change; returns how many were published (0 without Redis)."""
    if not redis_url:
        return 0
    unique = list(dict.fromkeys(changes))
    if not unique:
        return 0
    try:
        from ..gateway.store_sync import publish_change

        for kind, subject_id in unique:
            publish_change(redis_url, kind, subject_id)
    except Exception as exc:  # the change is committed; replicas will pick it up by polling
        _log.warning("could not push %d change(s) over Redis: %r", len(unique), exc)
        return 0
    return len(unique)


def run_and_announce(
    factory: sessionmaker[Session], redis_url: str | None, fn: Callable[[Session], T]
) -> T:
    """Run ``fn`` in one transaction; after it commits, push its changes to gateways."""
    with session_scope(factory) as session:
        result = fn(session)
        changes = take_changes(session)
    announce(redis_url, changes)
    return result
