"""Account policy on the hot path: who the key belongs to, whether the account and its
licence allow this request, and which rate limits apply. Pure functions over the cached
account state, so each rule is testable without a server."""

from __future__ import annotations

import time

from ..config import LimitSettings
from .accounts import AccountAuth, AuthCache
from .errors import GatewayError
from .limits import EffectiveLimits

__all__ = ["authenticate", "check_licence", "check_use", "effective_limits"]


def authenticate(cache: AuthCache, authorization: bytes | None) -> AccountAuth:
    """The account behind a bearer key: 401 when missing, unknown, revoked or expired;
    403 when the account is suspended or terminated."""
    if not authorization:
        raise GatewayError(
            401,
            "missing_api_key",
            "no API key provided: send it as 'Authorization: Bearer sk-dw-...'",
        )
    if authorization[:7].lower() != b"bearer ":
        raise GatewayError(
            401,
            "invalid_api_key",
            "the Authorization header must be 'Bearer <api key>'",
        )
    token = authorization[7:].strip().decode("latin-1")
    auth = cache.lookup(token)
    if auth is None:
        raise GatewayError(
            401,
            "invalid_api_key",
            "incorrect, revoked or unknown API key; create a new one with "
            "'distillwarden key create'",
        )
    status = auth.org.status
    if status == "terminated":
        raise GatewayError(
            403, "account_terminated", "this account has been terminated; contact your provider"
        )
    if auth.revoked:
        raise GatewayError(
            401, "revoked_api_key", "this API key has been revoked; create a new one"
        )
    if auth.expires_at is not None and time.time() >= auth.expires_at:
        raise GatewayError(401, "expired_api_key", "this API key has expired; create a new one")
    if status == "suspended":
        raise GatewayError(
            403,
            "account_suspended",
            "this account is suspended pending investigation; contact your provider",
        )
    return auth


def effective_limits(defaults: LimitSettings, auth: AccountAuth) -> EffectiveLimits:
    """Per-minute limits for one request: key override or default, licence override or
    default, scaled down for a throttled account."""
    d = defaults
    lic = auth.org.licence
    key_rpm = auth.requests_per_min if auth.requests_per_min is not None else d.key_requests_per_min
    key_tpm = auth.tokens_per_min if auth.tokens_per_min is not None else d.key_tokens_per_min
    org_rpm = d.org_requests_per_min
    org_tpm = d.org_tokens_per_min
    if lic is not None:
        if lic.requests_per_min is not None:
            org_rpm = lic.requests_per_min
        if lic.tokens_per_min is not None:
            org_tpm = lic.tokens_per_min
    if auth.org.status == "throttled":
        f = auth.org.throttle_factor
        if f is None:
            f = d.throttled_factor
        return EffectiveLimits(
            _scaled(key_rpm, f), _scaled(key_tpm, f), _scaled(org_rpm, f), _scaled(org_tpm, f)
        )
    return EffectiveLimits(key_rpm, key_tpm, org_rpm, org_tpm)


def check_licence(auth: AccountAuth, model: str, region: str) -> None:
    """403 unless the active licence is in force and covers ``model`` in ``region``."""
    lic = auth.org.licence
    if lic is None:
        raise GatewayError(
            403,
            "no_active_licence",
            f"organization {auth.org.org_id} has no active licence; ask your provider to set one",
        )
    now = time.time()
    if lic.valid_from is not None and now < lic.valid_from:
        raise GatewayError(403, "licence_not_yet_valid", "the licence is not valid yet")
    if lic.valid_until is not None and now >= lic.valid_until:
        raise GatewayError(403, "licence_expired", "the licence has expired; renew it")
    if not lic.allows_model(model):
        raise GatewayError(
            403,
            "model_not_licensed",
            f"the licence does not cover model {model!r}",
            param="model",
        )
    if not lic.allows_region(region):
        raise GatewayError(
            403,
            "region_not_licensed",
            f"the licence does not cover region {region!r}",
        )


def check_use(auth: AccountAuth, use: bytes) -> None:
    """A declared use (header ``x-distillwarden-use``) must be one the licence permits."""
    lic = auth.org.licence
    declared = use.decode("latin-1").strip().lower()
    if lic is None or declared not in lic.permitted_uses:
        permitted = ", ".join(lic.permitted_uses) if lic else "none"
        raise GatewayError(
            403,
            "use_not_permitted",
            f"the licence does not permit the declared use {declared[:40]!r} "
            f"(permitted: {permitted})",
        )


def _scaled(limit: int, factor: float) -> int:
    """A throttled limit (never 0, which would mean unlimited)."""
    if not limit:
        return limit
    return max(1, int(limit * factor))
