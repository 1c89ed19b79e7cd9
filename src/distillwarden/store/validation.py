"""Validation of the values an operator types: ids, channels, regions, permitted uses, dates.

Kept apart from the services so the admin API, the CLI and the console report the same
errors for the same input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from .errors import InvalidInput

__all__ = [
    "KNOWN_MARKETS",
    "MARKET_MEMBERS",
    "PERMITTED_USES",
    "normalize_channel",
    "normalize_datetime",
    "normalize_limit",
    "normalize_models",
    "normalize_permitted_uses",
    "normalize_regions",
    "region_covered",
    "register_permitted_use",
    "require_text",
    "validate_id",
]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_CHANNEL_RE = re.compile(r"^(direct|reseller:[A-Za-z0-9][A-Za-z0-9_.-]{0,100})$")
_REGION_RE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_USE_RE = re.compile(r"^[a-z][a-z0-9-]{1,48}$")

#: Multi-country markets accepted besides ISO 3166-1 alpha-2 codes (and ``CC-SUB`` codes).
KNOWN_MARKETS = frozenset({"EU", "EEA", "EMEA", "APAC", "LATAM", "MENA", "GLOBAL"})

_EU = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    ]
)

#: Markets with a fixed membership: a licence for ``EU`` covers requests from ``DE``.
#: Other known markets (``APAC``, ``EMEA`` …) have no single definition and match only
#: requests attributed to that literal code (e.g. by the gateway's IP-range map).
MARKET_MEMBERS: dict[str, frozenset[str]] = {
    "EU": _EU,
    "EEA": _EU | {"IS", "LI", "NO"},
}


def region_covered(licence_regions: Iterable[str], region: str | None) -> bool:
    """Whether a request attributed to ``region`` falls under a licence's regions.

    No regions (or ``GLOBAL``) cover everything; ``US`` covers ``US-CA``; ``EU``/``EEA``
    cover their member states; anything else must match exactly (case-insensitive).
    """
    allowed = {str(r).upper() for r in licence_regions}
    if not allowed or "GLOBAL" in allowed:
        return True
    if not region:
        return False
    code = region.strip().upper()
    country = code.split("-", 1)[0]
    if code in allowed or country in allowed:
        return True
    return any(country in MARKET_MEMBERS.get(m, frozenset()) for m in allowed)


#: Permitted uses a licence may grant. Extend with :func:`register_permitted_use`.
PERMITTED_USES: dict[str, str] = {
    "inference": "serve the customer's own application and its end users",
    "evaluation": "benchmark or evaluate the provider's models",
    "fine-tuning-data": "use outputs as training data for another model (usually forbidden)",
    "embeddings": "compute embeddings",
    "research": "non-commercial research under a separate agreement",
    "batch": "offline batch processing",
}


def register_permitted_use(name: str, description: str) -> None:
    """Add a permitted use (lower-case, letters, digits and dashes) for licences to grant."""
    if not _USE_RE.match(name):
        raise InvalidInput(
            f"permitted use {name!r} must be lower-case letters, digits and dashes "
            "(2-49 characters), e.g. 'synthetic-data'"
        )
    PERMITTED_USES[name] = description


def validate_id(value: str, what: str) -> str:
    """An id of letters, digits and ``_.:-`` (at most 64 characters)."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not a valid id: use 1-64 letters, digits, '_', '.', ':' "
            "or '-', starting with a letter or digit"
        )
    return value


def require_text(value: str | None, what: str, *, max_len: int = 10_000) -> str:
    """A non-empty string (actor, reason, name) of bounded length."""
    if value is None or not str(value).strip():
        raise InvalidInput(f"{what} is required and must not be empty")
    value = str(value).strip()
    if len(value) > max_len:
        raise InvalidInput(f"{what} is too long ({len(value)} > {max_len} characters)")
    return value


def normalize_channel(channel: str) -> str:
    """``direct`` or ``reseller:<name>`` (the reseller a customer is licensed through)."""
    value = (channel or "").strip()
    if not _CHANNEL_RE.match(value):
        raise InvalidInput(
            f"channel {channel!r} is not valid: use 'direct' or 'reseller:<name>' "
            "(name of letters, digits, '.', '_' or '-'), e.g. 'reseller:cloudco'"
        )
    return value


def normalize_regions(regions: Iterable[str]) -> list[str]:
    """Upper-cased ISO 3166-1 alpha-2 codes (``US``, ``DE``), subdivisions (``US-CA``) or a
    known market (``EU``, ``APAC`` …). An empty list means every region."""
    if isinstance(regions, str):
        regions = [r for r in regions.split(",") if r.strip()]
    out: list[str] = []
    for raw in regions:
        code = str(raw).strip().upper()
        if not (_REGION_RE.match(code) or code in KNOWN_MARKETS):
            raise InvalidInput(
                f"region {raw!r} is not a region code: use ISO 3166-1 alpha-2 codes such as "
                f"'US' or 'DE', subdivisions such as 'US-CA', or one of {sorted(KNOWN_MARKETS)}"
            )
        if code not in out:
            out.append(code)
    return out


def normalize_permitted_uses(uses: Iterable[str]) -> list[str]:
    """Known permitted uses, in the order given, without duplicates; at least one."""
    if isinstance(uses, str):
        uses = [u for u in uses.split(",") if u.strip()]
    out: list[str] = []
    for raw in uses:
        use = str(raw).strip().lower()
        if use not in PERMITTED_USES:
            raise InvalidInput(
                f"unknown permitted use {raw!r}; known uses: {sorted(PERMITTED_USES)} "
                "(add one with distillwarden.store.validation.register_permitted_use)"
            )
        if use not in out:
            out.append(use)
    if not out:
        raise InvalidInput("a licence needs at least one permitted use, e.g. 'inference'")
    return out


def normalize_models(models: Iterable[str]) -> list[str]:
    """Model names or shell-style patterns (``*``, ``smollm2-*``); at least one."""
    if isinstance(models, str):
        models = [m for m in models.split(",") if m.strip()]
    out = [str(m).strip() for m in models if str(m).strip()]
    if not out:
        raise InvalidInput("a licence needs at least one model or pattern; '*' allows all")
    for m in out:
        if len(m) > 200 or any(c.isspace() for c in m):
            raise InvalidInput(f"model pattern {m!r} must be one word of at most 200 characters")
    return list(dict.fromkeys(out))


def normalize_datetime(value: datetime | str | None, what: str) -> datetime | None:
    """An aware UTC datetime from a datetime or an ISO-8601 string (naive means UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(
                f"{what} {value!r} is not an ISO-8601 date, e.g. 2026-01-31 or 2026-01-31T12:00:00Z"
            ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def normalize_limit(value: int | None, what: str) -> int | None:
    """A non-negative integer limit, ``None`` for the installation default (0 = unlimited)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{what} must be a whole number >= 0 (0 means unlimited), got {value!r}")
    return value
