"""Errors raised by the store services; each message says what to do next."""

from __future__ import annotations

__all__ = ["Conflict", "InvalidInput", "InvalidTransition", "NotFound", "StoreError"]


class StoreError(Exception):
    """Base class of every error the store services raise."""

    code = "store_error"


class NotFound(StoreError):
    """The organization, key, licence or case does not exist."""

    code = "not_found"


class InvalidTransition(StoreError):
    """The change is not allowed from the current state (e.g. a terminated account)."""

    code = "invalid_transition"


class Conflict(StoreError):
    """The object already exists (e.g. an organization id is taken)."""

    code = "conflict"


class InvalidInput(StoreError, ValueError):
    """A value is malformed: bad channel, region code, permitted use, dates, limits…"""

    code = "invalid_input"
