"""The store: organizations, API keys (hashes only), licences, account status, findings,
cases and the hash-chained audit log (SQLAlchemy 2 + Alembic; SQLite or PostgreSQL).

Change it only through :mod:`distillwarden.store.services`, which validates, audits and
announces every change on the change feed.
"""

from .errors import Conflict, InvalidInput, InvalidTransition, NotFound, StoreError
from .services import (
    create_api_key,
    create_org,
    get_org,
    list_orgs,
    reinstate,
    revoke_api_key,
    set_licence,
    set_status,
)

__all__ = [
    "Conflict",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "StoreError",
    "create_api_key",
    "create_org",
    "get_org",
    "list_orgs",
    "reinstate",
    "revoke_api_key",
    "set_licence",
    "set_status",
]
