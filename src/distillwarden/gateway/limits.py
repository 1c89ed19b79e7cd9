"""Per-key and per-organization limits on requests/min and tokens/min.

Each (scope, dimension) is a leaky bucket of capacity ``limit`` draining at ``limit/60`` per
second: a request is admitted when its cost fits in every bucket, and then charged to all of
them. Tokens are charged with an estimate before the request (body size / 4 plus
``max_tokens``) and settled to the upstream's reported usage afterwards.

:class:`LocalRateLimiter` keeps the buckets in process (one replica);
:class:`RedisRateLimiter` keeps them in Redis (one atomic Lua call per request) so that all
replicas share them, and falls back to local buckets while Redis is unreachable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

__all__ = [
    "EffectiveLimits",
    "LimitResult",
    "LocalRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "format_reset",
    "retry_after_header",
]

_log = logging.getLogger("distillwarden.gateway.limits")


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """Per-minute limits for one request after licence, key overrides and throttling
    (0 = unlimited)."""

    key_rpm: int
    key_tpm: int
    org_rpm: int
    org_tpm: int

    @property
    def unlimited(self) -> bool:
        return not (self.key_rpm or self.key_tpm or self.org_rpm or self.org_tpm)


@dataclass(frozen=True, slots=True)
class LimitResult:
    """Admission decision with the ``x-ratelimit-*`` headers to send either way."""

    allowed: bool
    headers: list[tuple[bytes, bytes]]
    retry_after_s: float = 0.0
    scope: str = ""
    dimension: str = ""


def format_reset(seconds: float) -> str:
    """Duration in OpenAI's header style: ``120ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1.0:
        return f"{max(0, int(seconds * 1000))}ms"
    if seconds < 60.0:
        return f"{seconds:.3g}s"
    m, s = divmod(seconds, 60.0)
    return f"{int(m)}m{int(s)}s"


_NAMES = {
    "requests": (
        b"x-ratelimit-limit-requests",
        b"x-ratelimit-remaining-requests",
        b"x-ratelimit-reset-requests",
    ),
    "tokens": (
        b"x-ratelimit-limit-tokens",
        b"x-ratelimit-remaining-tokens",
        b"x-ratelimit-reset-tokens",
    ),
}


def _tighter(key_lim: int, key_level: float, org_lim: int, org_level: float) -> tuple[int, float]:
    """The (limit, level) with less room left; limit 0 when neither applies."""
    if key_lim > 0 and (org_lim <= 0 or key_lim - key_level <= org_lim - org_level):
        return key_lim, key_level
    if org_lim > 0:
        return org_lim, org_level
    return 0, 0.0


def _headers(
    limits: EffectiveLimits, levels: tuple[float, float, float, float]
) -> list[tuple[bytes, bytes]]:
    """Headers for the tighter of key and org in each dimension."""
    out: list[tuple[bytes, bytes]] = []
    for dim, (lim, level) in (
        ("requests", _tighter(limits.key_rpm, levels[0], limits.org_rpm, levels[2])),
        ("tokens", _tighter(limits.key_tpm, levels[1], limits.org_tpm, levels[3])),
    ):
        if not lim:
            continue
        names = _NAMES[dim]
        remaining = lim - level
        out.append((names[0], b"%d" % lim))
        out.append((names[1], b"%d" % (remaining if remaining > 0 else 0)))
        out.append((names[2], format_reset(level * 60.0 / lim).encode()))
    return out


def _decide(
    limits: EffectiveLimits,
    levels: list[float],
    req_cost: float,
    tok_cost: float,
) -> tuple[bool, float, str, str]:
    """Whether the costs fit into every bucket; if not, the wait and the binding bucket."""
    caps = (limits.key_rpm, limits.key_tpm, limits.org_rpm, limits.org_tpm)
    costs = (req_cost, tok_cost, req_cost, tok_cost)
    worst = 0.0
    scope = dimension = ""
    for i in range(4):
        cap = caps[i]
        if cap > 0 and levels[i] + costs[i] > cap:
            wait = (levels[i] + costs[i] - cap) * 60.0 / cap
            if wait >= worst:
                worst = wait
                scope = "key" if i < 2 else "organization"
                dimension = "requests" if i % 2 == 0 else "tokens"
    return not scope, worst, scope, dimension


class RateLimiter:
    """Interface of the limiters: admit-and-charge, then settle the token estimate."""

    async def acquire(
        self, key_id: str, org_id: str, limits: EffectiveLimits, tokens: int
    ) -> LimitResult:
        raise NotImplementedError

    async def settle(self, key_id: str, org_id: str, limits: EffectiveLimits, delta: int) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""


class LocalRateLimiter(RateLimiter):
    """In-process buckets (the embedded default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # bucket id -> [request level, token level, last update]
        self._buckets: dict[str, list[float]] = {}
        self._ops = 0

    def _levels(self, bid: str, rpm: int, tpm: int, now: float) -> list[float]:
        b = self._buckets.get(bid)
        if b is None:
            b = [0.0, 0.0, now]
            self._buckets[bid] = b
            return b
        dt = now - b[2]
        if dt > 0:
            b[0] = max(0.0, b[0] - dt * rpm / 60.0) if rpm else 0.0
            b[1] = max(0.0, b[1] - dt * tpm / 60.0) if tpm else 0.0
            b[2] = now
        return b

    def acquire_now(
        self, key_id: str, org_id: str, limits: EffectiveLimits, tokens: int
    ) -> LimitResult:
        """Synchronous admission (no I/O): the hot path calls this directly."""
        if limits.unlimited:
            return LimitResult(True, [])
        now = self._clock()
        kb = self._levels("k:" + key_id, limits.key_rpm, limits.key_tpm, now)
        ob = self._levels("o:" + org_id, limits.org_rpm, limits.org_tpm, now)
        levels = [kb[0], kb[1], ob[0], ob[1]]
        allowed, wait, scope, dim = _decide(limits, levels, 1.0, float(tokens))
        if allowed:
            if limits.key_rpm:
                kb[0] += 1.0
            if limits.key_tpm:
                kb[1] += tokens
            if limits.org_rpm:
                ob[0] += 1.0
            if limits.org_tpm:
                ob[1] += tokens
        self._ops += 1
        if self._ops >= 50_000:
            self._prune(now)
        return LimitResult(
            allowed, _headers(limits, (kb[0], kb[1], ob[0], ob[1])), wait, scope, dim
        )

    async def acquire(
        self, key_id: str, org_id: str, limits: EffectiveLimits, tokens: int
    ) -> LimitResult:
        return self.acquire_now(key_id, org_id, limits, tokens)

    def settle_now(self, key_id: str, org_id: str, limits: EffectiveLimits, delta: int) -> None:
        """Replace the token estimate by the actual usage (``delta`` = actual - estimate)."""
        if not delta:
            return
        # levels drain lazily from their last update, so the correction is a plain addition
        if limits.key_tpm:
            kb = self._buckets.get("k:" + key_id)
            if kb is not None:
                kb[1] = max(0.0, kb[1] + delta)
        if limits.org_tpm:
            ob = self._buckets.get("o:" + org_id)
            if ob is not None:
                ob[1] = max(0.0, ob[1] + delta)

    async def settle(self, key_id: str, org_id: str, limits: EffectiveLimits, delta: int) -> None:
        self.settle_now(key_id, org_id, limits, delta)

    def _prune(self, now: float) -> None:
        """Forget buckets idle for over a minute (they have drained completely)."""
        self._ops = 0
        stale = [bid for bid, b in self._buckets.items() if now - b[2] > 60.0]
        for bid in stale:
            del self._buckets[bid]


_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local caps = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])}
local costs = {tonumber(ARGV[5]), tonumber(ARGV[6])}
local force = ARGV[7] == '1'
local levels = {}
for i = 1, 2 do
  local st = redis.call('HMGET', KEYS[i], 'r', 't', 'ts')
  local ts = tonumber(st[3]) or now
  for d = 1, 2 do
    local cap = caps[(i - 1) * 2 + d]
    local level = tonumber(st[d]) or 0
    if cap > 0 then
      level = math.max(0, level - (now - ts) * cap / 60)
    else
      level = 0
    end
    levels[(i - 1) * 2 + d] = level
  end
end
local allowed = 1
if not force then
  for j = 1, 4 do
    local cap = caps[j]
    local cost = costs[((j - 1) % 2) + 1]
    if cap > 0 and levels[j] + cost > cap then allowed = 0 end
  end
end
local out = {allowed}
for j = 1, 4 do
  if allowed == 1 and caps[j] > 0 then
    levels[j] = math.max(0, levels[j] + costs[((j - 1) % 2) + 1])
  end
  out[j + 1] = tostring(levels[j])
end
for i = 1, 2 do
  redis.call('HSET', KEYS[i], 'r', levels[(i - 1) * 2 + 1], 't', levels[(i - 1) * 2 + 2], 'ts', now)
  redis.call('PEXPIRE', KEYS[i], 120000)
end
return out
"""


class RedisRateLimiter(RateLimiter):
    """Buckets shared by all replicas in Redis: one ``EVALSHA`` round trip per request."""

    def __init__(self, redis_url: str, *, prefix: str = "dw:rl:") -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(redis_url)
        self._script = self._client.register_script(_LUA)
        self._prefix = prefix
        self._fallback = LocalRateLimiter()
        self._failing = False

    async def _call(
        self, key_id: str, org_id: str, limits: EffectiveLimits, req: int, tok: int, force: bool
    ) -> list[float] | None:
        try:
            out = await self._script(
                keys=[self._prefix + "k:" + key_id, self._prefix + "o:" + org_id],
                args=[
                    limits.key_rpm,
                    limits.key_tpm,
                    limits.org_rpm,
                    limits.org_tpm,
                    req,
                    tok,
                    "1" if force else "0",
                ],
            )
        except Exception as exc:  # Redis down: keep serving with local buckets
            if not self._failing:
                _log.warning(
                    orjson.dumps(
                        {"event": "redis_limits_unavailable", "error": repr(exc)[:300]}
                    ).decode()
                )
            self._failing = True
            return None
        if self._failing:
            _log.info(orjson.dumps({"event": "redis_limits_restored"}).decode())
            self._failing = False
        return [float(out[0])] + [float(x) for x in out[1:5]]

    async def acquire(
        self, key_id: str, org_id: str, limits: EffectiveLimits, tokens: int
    ) -> LimitResult:
        if limits.unlimited:
            return LimitResult(True, [])
        out = await self._call(key_id, org_id, limits, 1, tokens, False)
        if out is None:
            return self._fallback.acquire_now(key_id, org_id, limits, tokens)
        levels = out[1:5]
        if out[0] == 1.0:
            return LimitResult(True, _headers(limits, (levels[0], levels[1], levels[2], levels[3])))
        _, wait, scope, dim = _decide(limits, levels, 1.0, float(tokens))
        return LimitResult(
            False,
            _headers(limits, (levels[0], levels[1], levels[2], levels[3])),
            max(wait, 0.001),
            scope or "key",
            dim or "requests",
        )

    async def settle(self, key_id: str, org_id: str, limits: EffectiveLimits, delta: int) -> None:
        if not delta or not (limits.key_tpm or limits.org_tpm):
            return
        if await self._call(key_id, org_id, limits, 0, delta, True) is None:
            self._fallback.settle_now(key_id, org_id, limits, delta)

    async def close(self) -> None:
        await self._client.aclose()


def retry_after_header(seconds: float) -> tuple[bytes, bytes]:
    """``retry-after`` in whole seconds (at least 1), as HTTP requires."""
    return (b"retry-after", str(max(1, math.ceil(seconds))).encode())
