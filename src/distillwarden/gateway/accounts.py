"""What the hot path knows about an API key: its organization's status and licence.

Plain immutable objects built from the store (see ``store_sync``) and kept in
:class:`AuthCache`, so that authenticating a request is two dictionary look-ups and never a
database round trip.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..store.keys import hash_api_key
from ..store.validation import region_covered

__all__ = ["AccountAuth", "AuthCache", "LicenceView", "OrgState", "epoch_or_none", "header_safe"]

_UNSAFE_HEADER_CHARS = re.compile(r"[^\x20-\x7e]")


def header_safe(value: str, limit: int = 300) -> str:
    """A value that can go into an HTTP header: printable ASCII only (no CR/LF), bounded."""
    return _UNSAFE_HEADER_CHARS.sub(" ", value)[:limit]


def epoch_or_none(value: datetime | None) -> float | None:
    """Seconds since the epoch; naive datetimes (SQLite) are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


@dataclass(frozen=True, slots=True)
class LicenceView:
    """The parts of an organization's active licence the gateway enforces."""

    licence_id: str
    name: str
    channel: str
    regions: frozenset[str]
    permitted_uses: tuple[str, ...]
    model_patterns: tuple[str, ...]
    valid_from: float | None
    valid_until: float | None
    requests_per_min: int | None
    tokens_per_min: int | None
    watermark: dict[str, Any]
    watermark_header: str | None
    _allowed: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        *,
        licence_id: str,
        name: str,
        channel: str,
        regions: list[Any] | tuple[Any, ...],
        permitted_uses: list[Any] | tuple[Any, ...],
        models: list[Any] | tuple[Any, ...],
        valid_from: datetime | None,
        valid_until: datetime | None,
        requests_per_min: int | None,
        tokens_per_min: int | None,
        watermark: dict[str, Any] | None,
    ) -> LicenceView:
        """Normalise a licence row: upper-case regions, compact watermark header."""
        wm = dict(watermark or {})
        return cls(
            licence_id=licence_id,
            name=name,
            channel=channel,
            regions=frozenset(str(r).upper() for r in regions or ()),
            permitted_uses=tuple(str(u) for u in permitted_uses or ()),
            model_patterns=tuple(str(m) for m in models or ()),
            valid_from=epoch_or_none(valid_from),
            valid_until=epoch_or_none(valid_until),
            requests_per_min=requests_per_min,
            tokens_per_min=tokens_per_min,
            watermark=wm,
            watermark_header=json.dumps(
                wm, separators=(",", ":"), sort_keys=True, ensure_ascii=True
            )
            if wm
            else None,
        )

    def allows_model(self, model: str) -> bool:
        """Whether the licence covers ``model`` (glob patterns such as ``*`` or ``gpt-*``)."""
        hit = self._allowed.get(model)
        if hit is None:
            hit = any(fnmatch.fnmatchcase(model, p) for p in self.model_patterns)
            if len(self._allowed) < 4096:
                self._allowed[model] = hit
        return hit

    def allows_region(self, region: str) -> bool:
        """Whether requests attributed to ``region`` are covered (no regions = everywhere).

        Exact matches are decided here; markets (``EU`` covers ``DE``), subdivisions
        (``US`` covers ``US-CA``) and ``GLOBAL`` follow the store's rule.
        """
        if not self.regions or region.upper() in self.regions:
            return True
        return region_covered(self.regions, region)


@dataclass(frozen=True, slots=True)
class OrgState:
    """An organization's enforcement state: status, throttle factor and active licence."""

    org_id: str
    status: str
    status_reason: str | None
    throttle_factor: float | None
    licence: LicenceView | None
    notice_header: str | None = None
    upstream_headers: bytes = b""

    @classmethod
    def build(
        cls,
        *,
        org_id: str,
        status: str,
        status_reason: str | None,
        throttle_factor: float | None,
        licence: LicenceView | None,
    ) -> OrgState:
        """Precompute the warning notice header for ``warned`` accounts."""
        notice = None
        if status == "warned":
            notice = header_safe(
                "account warned: " + (status_reason or "see your provider's notice")
            )
        upstream = b"x-distillwarden-org: " + header_safe(org_id).encode() + b"\r\n"
        if licence is not None and licence.watermark_header is not None:
            upstream += (
                b"x-distillwarden-watermark: "
                + header_safe(licence.watermark_header, 8192).encode()
                + b"\r\n"
            )
        return cls(org_id, status, status_reason, throttle_factor, licence, notice, upstream)


@dataclass(frozen=True, slots=True)
class AccountAuth:
    """A verified API key with its organization's current state."""

    key_id: str
    key_prefix: str
    key_hash: str
    expires_at: float | None
    requests_per_min: int | None
    tokens_per_min: int | None
    org: OrgState
    revoked: bool = False


class AuthCache:
    """In-memory map from API-key hash to :class:`AccountAuth`.

    Verified plaintext keys are memoised (bounded) so that the HMAC runs once per key; the
    map from hash to account is replaced per organization when the store changes, so a
    revoked key or a suspended account takes effect on the next request.
    """

    def __init__(self, secret: bytes, *, max_memo: int = 100_000) -> None:
        self._secret = secret
        self._by_hash: dict[str, AccountAuth] = {}
        self._by_org: dict[str, set[str]] = {}
        self._orgs: dict[str, OrgState] = {}
        self._memo: dict[str, str] = {}
        self._max_memo = max_memo

    def __len__(self) -> int:
        return len(self._by_hash)

    def lookup(self, api_key: str) -> AccountAuth | None:
        """The account behind a plaintext key, or None when unknown or revoked."""
        h = self._memo.get(api_key)
        if h is None:
            h = hash_api_key(self._secret, api_key)
            auth = self._by_hash.get(h)
            if auth is not None:  # only memoise real keys: garbage cannot fill memory
                if len(self._memo) >= self._max_memo:
                    self._memo.clear()
                self._memo[api_key] = h
            return auth
        return self._by_hash.get(h)

    def org(self, org_id: str) -> OrgState | None:
        """The cached state of one organization."""
        return self._orgs.get(org_id)

    def replace_org(self, org_id: str, state: OrgState | None, keys: list[AccountAuth]) -> None:
        """Install the current state and keys of one organization (None removes it)."""
        for h in self._by_org.pop(org_id, ()):
            self._by_hash.pop(h, None)
        if state is None:
            self._orgs.pop(org_id, None)
            return
        self._orgs[org_id] = state
        hashes = set()
        for k in keys:
            self._by_hash[k.key_hash] = k
            hashes.add(k.key_hash)
        self._by_org[org_id] = hashes

    def replace_all(self, orgs: dict[str, tuple[OrgState, list[AccountAuth]]]) -> None:
        """Install a full snapshot of the store (at start-up and on periodic resync)."""
        by_hash: dict[str, AccountAuth] = {}
        by_org: dict[str, set[str]] = {}
        states: dict[str, OrgState] = {}
        for org_id, (state, keys) in orgs.items():
            states[org_id] = state
            by_org[org_id] = {k.key_hash for k in keys}
            for k in keys:
                by_hash[k.key_hash] = k
        self._by_hash, self._by_org, self._orgs = by_hash, by_org, states
