"""Turn planned accounts into event rows, streamed in time order with bounded memory.

Arrival times of every account are drawn first (a few bytes per event); request contents are
then generated window by window across all accounts, so each chunk holds only one time window
of traffic and chunks come out in time order. Every account has its own random stream seeded
from (scenario seed, account index): the same seed gives the same events, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from ..events.record import extract_request_fields, hash_identifier, hash_ip
from ..events.schema import EVENT_SCHEMA
from .accounts import AccountPlan, plan_accounts
from .personas import AccountContext
from .pools import Pools, estimate_tokens
from .scenario import Scenario
from .timing import sample_arrivals

__all__ = ["EventChunk", "SimulatedTraffic", "generate"]

_US = 1_000_000
_REQUEST_FIELDS = ("model", "prompt_text", "last_user_text", "n_messages", "temperature",
                   "max_tokens", "n", "logprobs", "top_logprobs", "stream", "has_tools")


@dataclass
class EventChunk:
    """A time window of simulated events in EVENT_SCHEMA, with the raw client hints the
    interchange and HTTP writers need (the table holds only their hashes)."""

    table: pa.Table
    ip: list[str]
    user_agent: list[str]
    is_attack: np.ndarray


class _Stream:
    """One account's arrivals and request generator."""

    def __init__(self, plan: AccountPlan, scenario: Scenario, pools: dict[str, Pools]) -> None:
        self.plan = plan
        ss = np.random.SeedSequence([scenario.seed, 0x5EED, plan.index])
        t_rng, c_rng, a_rng, u_rng, l_rng, i_rng = (np.random.default_rng(s)
                                                    for s in ss.spawn(6))
        # per-event draws come from their own streams, so the events do not depend on how
        # the traffic is cut into chunks or split across workers
        self.u_rng, self.l_rng, self.i_rng = u_rng, l_rng, i_rng
        secret = scenario.secret.encode()
        n_host = plan.n_events - plan.n_attack if plan.attack is not None else plan.n_events
        host = sample_arrivals(
            t_rng, n_host, start_us=plan.start_us, days=plan.days, tz_hours=plan.tz_hours,
            model=plan.persona.timing, shared_starts=plan.shared_starts,
        )
        ts, session, turn = host.ts_us, host.session, host.turn
        attack_flag = np.full(ts.size, plan.label == "attacker" and plan.attack is None)
        if plan.attack is not None and plan.n_attack > 0:
            att = sample_arrivals(
                t_rng, plan.n_attack, start_us=plan.start_us, days=plan.days,
                tz_hours=plan.tz_hours, model=plan.attack.timing,
            )
            ts = np.concatenate([ts, att.ts_us])
            session = np.concatenate([session, att.session + 1_000_000])
            turn = np.concatenate([turn, att.turn])
            attack_flag = np.concatenate([attack_flag, np.ones(att.ts_us.size, dtype=bool)])
            order = np.argsort(ts, kind="stable")
            ts, session, turn, attack_flag = ts[order], session[order], turn[order], \
                attack_flag[order]
        self.ts, self.turn, self.attack_flag = ts, turn, attack_flag
        self.pos = 0
        split_pools = pools[plan.split]
        model = scenario.models[int(c_rng.integers(0, len(scenario.models)))]
        self.ctx = AccountContext(c_rng, split_pools, model,
                                  plan.persona.setup(c_rng, split_pools, plan.shared_style))
        self.attack_ctx: AccountContext | None = None
        if plan.attack is not None:
            self.attack_ctx = AccountContext(a_rng, pools["traffic"], model,
                                             plan.attack.setup(a_rng, pools["traffic"]))
        self.ip_hashes = [hash_ip(secret, ip) for ip in plan.ips]
        self.ua_hashes = [hash_identifier(secret, ua) for ua in plan.user_agents]
        self.key_id = "key_" + plan.org_id.removeprefix("org_")
        self.key_prefix = "sk-dw-" + plan.org_id[4:8]

    def take_until(self, t_end_us: int, cols: dict[str, list[Any]], extra: dict[str, list[Any]]
                   ) -> None:
        stop = int(np.searchsorted(self.ts, t_end_us, side="left"))
        count = stop - self.pos
        if count <= 0:
            return
        plan = self.plan
        # per-event randomness drawn in one go (much cheaper than per-row calls)
        u = self.u_rng.random((count, 4))
        k_ip = (u[:, 0] * len(plan.ips)).astype(np.int64)
        k_ua = (u[:, 1] * len(plan.user_agents)).astype(np.int64)
        k_region = (u[:, 2] * len(plan.regions)).astype(np.int64)
        limited = u[:, 3] < 0.004
        ttfb = self.l_rng.lognormal(np.log(350.0), 0.5, size=count)
        ids = self.i_rng.bytes(12 * count).hex()
        app = {name: col.append for name, col in cols.items()}
        for j, i in enumerate(range(self.pos, stop)):
            if self.attack_flag[i] and self.attack_ctx is not None and plan.attack is not None:
                req = plan.attack.request(self.attack_ctx, int(self.turn[i]))
            else:
                req = plan.persona.request(self.ctx, int(self.turn[i]))
            fields = extract_request_fields(req.body)
            lim = bool(limited[j])
            completion = 0 if lim else estimate_tokens(req.response_text) * (fields["n"] or 1)
            ip_hash, net_hash = self.ip_hashes[k_ip[j]]
            app["event_id"]("evt_" + ids[24 * j:24 * j + 24])
            app["ts"](int(self.ts[i]))
            app["org_id"](plan.org_id)
            app["key_id"](self.key_id)
            app["key_prefix"](self.key_prefix)
            app["channel"](plan.channel)
            app["licence"](plan.licence)
            app["region"](plan.regions[k_region[j]])
            app["ip_hash"](ip_hash)
            app["ip_net_hash"](net_hash)
            app["ua_hash"](self.ua_hashes[k_ua[j]])
            app["endpoint"](req.endpoint)
            app["request_json"](orjson.dumps(req.body).decode())
            for name in _REQUEST_FIELDS:
                app[name](fields[name])
            app["response_text"](None if lim else req.response_text)
            app["finish_reason"](None if lim else req.finish_reason)
            app["prompt_tokens"](estimate_tokens(fields["prompt_text"]) + 4 * fields["n_messages"])
            app["completion_tokens"](completion)
            app["status"](429 if lim else 200)
            app["error_code"]("rate_limit_exceeded" if lim else None)
            app["latency_ms"](float(ttfb[j]) + completion * 12.0)
            app["ttfb_ms"](float(ttfb[j]))
            app["upstream"]("sim")
            app["source"]("sim")
            extra["ip"].append(plan.ips[k_ip[j]])
            extra["user_agent"].append(plan.user_agents[k_ua[j]])
            extra["is_attack"].append(bool(self.attack_flag[i]))
        self.pos = stop


class SimulatedTraffic:
    """The planned accounts of a scenario and an iterator over its events in time order."""

    def __init__(self, scenario: Scenario, *, chunk_events: int = 20_000) -> None:
        self.scenario = scenario
        self.chunk_events = chunk_events
        self.plans = plan_accounts(scenario)
        self.pools = {"reference": Pools("reference"), "traffic": Pools("traffic")}

    @property
    def total_events(self) -> int:
        """Exact number of events the scenario will produce."""
        return sum(p.n_events for p in self.plans)

    def chunks(self, part: int = 0, parts: int = 1) -> Iterator[EventChunk]:
        """Event chunks in time order, each at most about ``chunk_events`` rows.

        ``part``/``parts`` restrict the chunks to every ``parts``-th account (for parallel
        writers, like gateway replicas writing their own segments); an account's events do
        not depend on the partition.
        """
        streams = [_Stream(p, self.scenario, self.pools) for p in self.plans
                   if p.index % parts == part]
        if not streams:
            return
        t0 = min(int(s.ts[0]) for s in streams if s.ts.size)
        t1 = max(int(s.ts[-1]) for s in streams if s.ts.size) + 1
        all_ts = np.concatenate([s.ts for s in streams])
        all_ts.sort()
        # window edges so that each window holds about chunk_events events
        idx = np.arange(self.chunk_events, all_ts.size, self.chunk_events)
        edges = [int(all_ts[i]) for i in idx if t0 < int(all_ts[i]) < t1]
        del all_ts
        for t_end in [*sorted(set(edges)), t1]:
            cols: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
            extra: dict[str, list[Any]] = {"ip": [], "user_agent": [], "is_attack": []}
            for s in streams:
                if s.pos < s.ts.size and s.ts[s.pos] < t_end:
                    s.take_until(t_end, cols, extra)
            if not cols["event_id"]:
                continue
            order = np.argsort(np.asarray(cols["ts"], dtype=np.int64), kind="stable")
            unsorted = pa.Table.from_pydict(cols, schema=EVENT_SCHEMA)
            cols.clear()
            table = unsorted.take(pa.array(order))
            del unsorted
            yield EventChunk(
                table,
                [extra["ip"][i] for i in order],
                [extra["user_agent"][i] for i in order],
                np.asarray(extra["is_attack"], dtype=bool)[order],
            )


def generate(scenario: Scenario, *, chunk_events: int = 20_000) -> SimulatedTraffic:
    """Plan ``scenario``; iterate ``.chunks()`` for its events."""
    return SimulatedTraffic(scenario, chunk_events=chunk_events)
