"""How fast an enforcement action reaches every gateway replica — and pushing it there.

:func:`publish_plans` tells replicas over Redis about the accounts an action changed (call
it after the transaction commits); without Redis, replicas pick changes up from the store's
change feed at their next poll (``status_poll_s``).

:func:`measure_propagation` measures it on a live deployment with a canary account: it
suspends the account through the store services, probes every replica in parallel until each
answers ``403 account_suspended``, reinstates it, waits until every replica lets it in again,
and repeats. The result is the distribution of per-replica delays.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from ..store import services
from ..store.db import session_scope

__all__ = [
    "PropagationResult",
    "measure_propagation",
    "publish_plans",
    "summarize",
    "wait_for_replicas",
]


def publish_plans(redis_url: str | None, plans: Iterable[Any]) -> int:
    """Push the status changes in ``plans`` (applied :class:`~.actions.PlannedAction` s) to
    every replica over Redis; a no-op without Redis. Returns the number of messages sent."""
    if not redis_url:
        return 0
    from ..gateway.store_sync import publish_change

    sent = 0
    for p in plans:
        if getattr(p, "applied", False) and getattr(p, "new_status", None) is not None:
            publish_change(redis_url, "status", p.org_id)
            sent += 1
    return sent


def summarize(values: Sequence[float]) -> dict[str, float]:
    """n, min, median, p90, p99, max and mean of delays in seconds."""
    if not values:
        return {"n": 0}
    v = sorted(values)

    def q(p: float) -> float:
        return v[min(len(v) - 1, max(0, round(p * (len(v) - 1))))]

    return {"n": len(v), "min": v[0], "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
            "max": v[-1], "mean": statistics.fmean(v)}


@dataclass
class PropagationResult:
    """Per-replica delays (seconds) from commit to the first refused / admitted request."""

    replicas: list[str]
    suspend_delays: dict[str, list[float]] = field(default_factory=dict)
    reinstate_delays: dict[str, list[float]] = field(default_factory=dict)

    def all_suspend(self) -> list[float]:
        return [d for ds in self.suspend_delays.values() for d in ds]

    def to_dict(self) -> dict[str, Any]:
        return {
            "replicas": len(self.replicas),
            "suspend": summarize(self.all_suspend()),
            "suspend_per_replica": {u: summarize(d) for u, d in self.suspend_delays.items()},
            "reinstate": summarize(
                [d for ds in self.reinstate_delays.values() for d in ds]),
            "suspend_samples_s": [round(d, 4) for d in self.all_suspend()],
        }


def _is_suspended(resp: httpx.Response) -> bool:
    if resp.status_code != 403:
        return False
    try:
        return bool(resp.json().get("error", {}).get("code") == "account_suspended")
    except ValueError:
        return False


def wait_for_replicas(
    urls: Sequence[str], api_key: str, want_suspended: bool, *, t0: float | None = None,
    timeout_s: float = 5.0, interval_s: float = 0.005, path: str = "/v1/models",
) -> dict[str, float]:
    """Probe every replica in parallel until each shows the account suspended (or active);
    return each replica's delay in seconds from ``t0`` (default: now)."""
    t0 = time.monotonic() if t0 is None else t0
    out: dict[str, float] = {}
    errors: list[str] = []

    def probe(url: str) -> None:
        with httpx.Client(timeout=2.0, trust_env=False) as c:
            while time.monotonic() - t0 < timeout_s:
                try:
                    r = c.get(url.rstrip("/") + path,
                              headers={"authorization": f"Bearer {api_key}"})
                except httpx.HTTPError:
                    time.sleep(interval_s)
                    continue
                if _is_suspended(r) == want_suspended and (want_suspended or r.status_code < 400):
                    out[url] = time.monotonic() - t0
                    return
                time.sleep(interval_s)
        errors.append(url)

    threads = [threading.Thread(target=probe, args=(u,), daemon=True) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        state = "suspended" if want_suspended else "active"
        raise TimeoutError(f"replica(s) {errors} did not show the account {state} within "
                           f"{timeout_s}s; check that they share the store and are polling")
    return out


def measure_propagation(
    sessions: sessionmaker[Session],
    org_id: str,
    api_key: str,
    gateway_urls: Sequence[str],
    *,
    rounds: int = 10,
    redis_url: str | None = None,
    timeout_s: float = 5.0,
    interval_s: float = 0.005,
    path: str = "/v1/models",
    actor: str = "propagation-probe",
    random_phase_s: float = 0.5,
    warmup_rounds: int = 1,
    seed: int = 0,
    on_round: Callable[[int], None] | None = None,
) -> PropagationResult:
    """Suspend and reinstate the canary ``org_id`` ``rounds`` times; measure per replica the
    delay from commit until it refuses (``403 account_suspended``) and admits again.

    Before each change it waits a random ``[0, random_phase_s)`` (set it to the replicas'
    poll interval): otherwise every change would land just after the poll that showed the
    previous one, and each round would measure the worst case.

    The first ``warmup_rounds`` are run but not recorded (a replica's first reload after
    start-up also warms its database connections and statement caches).

    Use an account that carries no real traffic: it is suspended during the measurement.
    """
    rng = random.Random(seed)
    from ..gateway.store_sync import publish_change

    urls = list(gateway_urls)
    result = PropagationResult(replicas=urls, suspend_delays={u: [] for u in urls},
                               reinstate_delays={u: [] for u in urls})
    with session_scope(sessions) as s:
        if services.get_org(s, org_id).status != "active":
            raise ValueError(f"canary account {org_id!r} must be active before measuring")
    wait_for_replicas(urls, api_key, False, timeout_s=timeout_s, interval_s=interval_s,
                      path=path)
    for i in range(-warmup_rounds, rounds):
        record = i >= 0
        label = f"round {i + 1}" if record else "warm-up round"
        time.sleep(rng.uniform(0, random_phase_s))
        with session_scope(sessions) as s:
            services.set_status(s, org_id, "suspended", actor=actor,
                                reason=f"propagation measurement, {label}")
        t0 = time.monotonic()
        if redis_url:
            publish_change(redis_url, "status", org_id)
        for u, d in wait_for_replicas(
                urls, api_key, True, t0=t0, timeout_s=timeout_s, interval_s=interval_s,
                path=path).items():
            if record:
                result.suspend_delays[u].append(d)
        time.sleep(rng.uniform(0, random_phase_s))
        with session_scope(sessions) as s:
            services.reinstate(s, org_id, actor=actor,
                               reason=f"propagation measurement, {label} done")
        t1 = time.monotonic()
        if redis_url:
            publish_change(redis_url, "status", org_id)
        for u, d in wait_for_replicas(
                urls, api_key, False, t0=t1, timeout_s=timeout_s, interval_s=interval_s,
                path=path).items():
            if record:
                result.reinstate_delays[u].append(d)
        if on_round is not None and record:
            on_round(i + 1)
    return result
