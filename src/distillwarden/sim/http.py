"""Send simulated traffic through a running distillwarden gateway (end to end).

Organizations, licences and API keys are created through the gateway's admin API (with the
simulated org ids, so the labels written beside still match), then the requests are replayed
in time order at a chosen rate. The upstream model answers for real; the gateway logs each
request as one event. Client IPs travel as ``X-Forwarded-For`` and regions as the region
header only when asked to, because a gateway ignores them unless configured to trust them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from .accounts import AccountPlan, created_iso
from .generate import generate
from .scenario import Scenario
from .writers import _atomic_bytes, _jsonl, label_records

__all__ = ["GatewayRun", "GatewayRunError", "send_to_gateway"]


class GatewayRunError(RuntimeError):
    """The gateway or its admin API refused the simulation; the message says why."""


@dataclass
class GatewayRun:
    """What a run through the gateway did."""

    sent: int = 0
    status: dict[int, int] = field(default_factory=dict)
    orgs: int = 0
    seconds: float = 0.0
    keys: dict[str, str] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"sent": self.sent, "status": {str(k): v for k, v in self.status.items()},
                "orgs": self.orgs, "seconds": round(self.seconds, 2)}


async def _admin(client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]) -> Any:
    resp = await client.request(method, "/admin" + path, json=body)
    if resp.status_code >= 400:
        raise GatewayRunError(
            f"admin API {method} {path} answered {resp.status_code}: {resp.text[:300]} "
            "(check --admin-token and that the gateway mounts the admin API)"
        )
    return resp.json()


async def _provision(client: httpx.AsyncClient, plans: list[AccountPlan]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for p in plans:
        await _admin(client, "POST", "/orgs", {
            "id": p.org_id, "name": f"sim {p.persona_name}", "tier": p.tier,
            "home_region": p.home_region, "reason": "simulated account",
            # the simulated sign-up time, as the dataset's accounts table records it
            "metadata": {"signed_up": created_iso(p)},
        })
        await _admin(client, "PUT", f"/orgs/{p.org_id}/licence", {
            "name": p.licence, "channel": p.channel, "reason": "simulated licence",
            "permitted_uses": ["inference", "evaluation"] if p.licence == "evaluation-permitted"
            else ["inference"],
        })
        created = await _admin(client, "POST", f"/orgs/{p.org_id}/keys", {"name": "sim"})
        keys[p.org_id] = created["secret"]
    return keys


async def _wait_for_keys(client: httpx.AsyncClient, key: str, timeout_s: float = 15.0) -> None:
    """New keys reach the gateway through its change feed; wait until the last one works."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        resp = await client.get("/v1/models", headers={"authorization": f"Bearer {key}"})
        if resp.status_code != 401:
            return
        await asyncio.sleep(0.2)
    raise GatewayRunError("the gateway did not accept the new API keys within "
                          f"{timeout_s:.0f} s; is it connected to the same store?")


async def _replay(
    scenario: Scenario, base_url: str, admin_token: str, *, rate: float, max_events: int | None,
    concurrency: int, forward_hints: bool, model: str | None, out: Path | None,
    progress: Callable[[int], None] | None, overrides: dict[str, Any] | None = None,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> GatewayRun:
    sim = generate(scenario, chunk_events=5_000)
    run = GatewayRun(orgs=len(sim.plans))
    t0 = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=120.0, limits=limits,
                                 headers={"authorization": f"Bearer {admin_token}"}) as admin:
        keys = await _provision(admin, sim.plans)
    run.keys = keys
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _atomic_bytes(out / "labels.jsonl", _jsonl(label_records(sim.plans)))
    sem = asyncio.Semaphore(concurrency)
    pending: set[asyncio.Task[None]] = set()

    async with httpx.AsyncClient(base_url=base_url, timeout=300.0, limits=limits) as client:
        if keys:
            await _wait_for_keys(client, keys[sim.plans[-1].org_id])

        async def one(org: str, endpoint: str, body: bytes, headers: dict[str, str]) -> None:
            async with sem:
                try:
                    resp = await client.post(endpoint, content=body, headers=headers)
                    code = resp.status_code
                except httpx.HTTPError:
                    code = 0
            run.status[code] = run.status.get(code, 0) + 1

        for chunk in sim.chunks():
            t = chunk.table
            orgs = t.column("org_id").to_pylist()
            endpoints = t.column("endpoint").to_pylist()
            bodies = t.column("request_json").to_pylist()
            regions = t.column("region").to_pylist()
            for i, org in enumerate(orgs):
                if max_events is not None and run.sent >= max_events:
                    break
                body = bodies[i]
                if model is not None or overrides or transform is not None:
                    obj = orjson.loads(body)
                    if model is not None:
                        obj["model"] = model
                    obj.update(overrides or {})
                    if transform is not None:
                        obj = transform(obj)
                    body = orjson.dumps(obj).decode()
                headers = {"authorization": f"Bearer {keys[org]}",
                           "user-agent": chunk.user_agent[i],
                           "content-type": "application/json"}
                if forward_hints:
                    headers["x-forwarded-for"] = chunk.ip[i]
                    headers["x-distillwarden-region"] = regions[i]
                pending.add(asyncio.create_task(one(org, endpoints[i], body.encode(), headers)))
                run.sent += 1
                if progress:
                    progress(1)
                if rate > 0:
                    target = t0 + run.sent / rate
                    delay = target - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if len(pending) >= 4 * concurrency:
                    _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if max_events is not None and run.sent >= max_events:
                break
        if pending:
            await asyncio.wait(pending)
    run.seconds = time.perf_counter() - t0
    return run


def send_to_gateway(
    scenario: Scenario,
    base_url: str,
    admin_token: str,
    *,
    rate: float = 20.0,
    max_events: int | None = None,
    concurrency: int = 16,
    forward_hints: bool = False,
    model: str | None = None,
    out: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    overrides: dict[str, Any] | None = None,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> GatewayRun:
    """Provision the scenario's accounts on the gateway and replay its requests.

    ``rate`` is requests per second (0: as fast as ``concurrency`` allows); ``model``
    overrides the model name in every request (e.g. the gateway's local model);
    ``forward_hints`` sends ``X-Forwarded-For`` and the region header; ``out`` receives
    ``labels.jsonl`` for evaluating the gateway's event log afterwards; ``overrides`` are
    request fields set on every request (e.g. ``{"max_tokens": 32}`` for a small model), and
    ``transform`` may rewrite each request body last (e.g. clip long prompts).
    """
    return asyncio.run(_replay(
        scenario, base_url.rstrip("/"), admin_token, rate=rate, max_events=max_events,
        concurrency=concurrency, forward_hints=forward_hints, model=model,
        out=Path(out) if out is not None else None, progress=progress, overrides=overrides,
        transform=transform,
    ))
