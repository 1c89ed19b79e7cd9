"""API key format and hashing. The secret is shown once; only its keyed hash is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["KEY_PREFIX", "generate_api_key", "hash_api_key", "display_prefix"]

KEY_PREFIX = "sk-dw-"


def generate_api_key() -> str:
    """A new random API key, e.g. ``sk-dw-3Fa9...`` (43 random url-safe characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(secret: bytes, api_key: str) -> str:
    """HMAC-SHA256 of the key with the installation secret, hex (64 chars)."""
    return hmac.new(secret, api_key.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def display_prefix(api_key: str) -> str:
    """The part of a key safe to show and log: ``sk-dw-`` plus four characters."""
    return api_key[: len(KEY_PREFIX) + 4]
