"""Console sessions: a signed cookie issued after the analyst enters the admin token.

The cookie holds the analyst's name and an expiry, signed with a key derived from the admin
token and the installation secret, so rotating either ends every session. Forms carry a
CSRF token derived from the cookie; the cookie itself is ``HttpOnly`` and ``SameSite=Strict``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass

from ..config import Settings

__all__ = [
    "COOKIE_NAME",
    "SESSION_TTL_S",
    "ConsoleUser",
    "SessionSigner",
    "clean_name",
]

COOKIE_NAME = "dw_console"
SESSION_TTL_S = 12 * 3600
_NAME_RE = re.compile(r"[^A-Za-z0-9 ._@-]")


def clean_name(name: str) -> str:
    """The analyst's name as recorded in the audit log (``console:<name>``)."""
    cleaned = _NAME_RE.sub("", name or "").strip()[:64]
    return cleaned or "analyst"


@dataclass(frozen=True)
class ConsoleUser:
    """A signed-in analyst."""

    name: str
    expires: int
    cookie: str

    @property
    def actor(self) -> str:
        return f"console:{self.name}"


class SessionSigner:
    """Issues and checks session cookies and CSRF tokens."""

    def __init__(self, settings: Settings) -> None:
        token = (settings.admin_token or "").encode()
        self._token = token
        self._key = hashlib.sha256(
            b"distillwarden-console\0" + token + b"\0" + settings.secret_bytes()
        ).digest()

    def check_token(self, given: str) -> bool:
        """Whether ``given`` is the admin token (constant time)."""
        return bool(self._token) and hmac.compare_digest(given.encode(), self._token)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, name: str, *, now: float | None = None) -> str:
        """A cookie value for ``name`` valid for :data:`SESSION_TTL_S`."""
        exp = int((now or time.time()) + SESSION_TTL_S)
        raw = json.dumps({"who": clean_name(name), "exp": exp}, separators=(",", ":"))
        payload = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def read(self, cookie: str | None, *, now: float | None = None) -> ConsoleUser | None:
        """The analyst of a valid, unexpired cookie; None otherwise."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, sig = cookie.split(".")
        if not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            who, exp = str(data["who"]), int(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if exp < (now or time.time()):
            return None
        return ConsoleUser(name=who, expires=exp, cookie=cookie)

    def csrf(self, user: ConsoleUser) -> str:
        """The CSRF token forms of this session must send back."""
        return self._sign("csrf:" + user.cookie)[:40]

    def check_csrf(self, user: ConsoleUser, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf(user))
