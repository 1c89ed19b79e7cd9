"""Write simulated traffic: a dataset directory (event log) or interchange JSONL files.

A dataset directory holds ``events/`` (Parquet segments in EVENT_SCHEMA, written atomically
through :func:`distillwarden.events.writer.write_segment`), ``accounts.parquet``,
``labels.jsonl`` (ground truth, one line per organization) and ``scenario.yaml``. The
interchange form is ``traffic.jsonl`` + ``accounts.jsonl`` + ``labels.jsonl`` as specified in
``formats/traffic-jsonl.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from ..events.importers import ACCOUNTS_SCHEMA
from ..events.record import hash_identifier
from ..events.writer import write_segment
from .accounts import AccountPlan
from .generate import EventChunk, SimulatedTraffic, generate
from .scenario import Scenario

__all__ = [
    "SimulationSummary",
    "accounts_table",
    "label_records",
    "write_dataset",
    "write_interchange",
]

Progress = Callable[[int], None]


@dataclass
class SimulationSummary:
    """What a simulation wrote."""

    out: Path
    events: int = 0
    accounts: int = 0
    attackers: int = 0
    segments: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"out": str(self.out), "events": self.events, "accounts": self.accounts,
                "attackers": self.attackers, "segments": len(self.segments),
                "seconds": round(self.seconds, 2)}


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def label_records(plans: list[AccountPlan]) -> list[dict[str, Any]]:
    """Ground truth per organization (``split`` says which benign prompt pool it used)."""
    return [
        {
            "org": p.org_id,
            "label": p.label,
            "strategy": p.strategy,
            "cluster": p.cluster,
            "persona": p.persona_name,
            "attacker_fraction": p.attacker_fraction,
            "split": p.split,
        }
        for p in plans
    ]


def accounts_table(plans: list[AccountPlan], secret: bytes) -> pa.Table:
    """What the provider knows about each organization (accounts.parquet)."""
    rows = [
        {
            "org_id": p.org_id,
            "licence": p.licence,
            "channel": p.channel,
            "home_region": p.home_region,
            "payment_fingerprint_hash": hash_identifier(secret, p.payment),
            "created": _dt(p.created_us),
            "tier": p.tier,
        }
        for p in plans
    ]
    return pa.Table.from_pylist(rows, schema=ACCOUNTS_SCHEMA)


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records)


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} is not empty; choose a new --out directory or delete this one first"
        )
    out.mkdir(parents=True, exist_ok=True)


def _write_part(scenario_json: str, events_dir: str, part: int, parts: int,
                chunk_events: int, counter: Any = None) -> tuple[int, list[str]]:
    """Worker: write the segments of every ``parts``-th account (a separate process)."""
    scenario = Scenario.model_validate_json(scenario_json)
    sim = generate(scenario, chunk_events=chunk_events)
    written, paths = 0, []
    for i, chunk in enumerate(sim.chunks(part, parts)):
        stem = f"sim-{scenario.seed}-p{part}of{parts}-{i:06d}"
        paths.append(str(write_segment(events_dir, chunk.table, name=stem)))
        written += chunk.table.num_rows
        if counter is not None:
            with counter.get_lock():
                counter.value += chunk.table.num_rows
    return written, paths


def _part_main(payload: str, events_dir: str, part: int, parts: int, chunk_events: int,
               counter: Any, results: Any) -> None:
    try:
        results.put((part, _write_part(payload, events_dir, part, parts, chunk_events, counter),
                     None))
    except BaseException as exc:  # reported to the parent, which raises it
        results.put((part, None, f"{type(exc).__name__}: {exc}"))


def _write_parallel(scenario: Scenario, events_dir: Path, workers: int, chunk_events: int,
                    progress: Progress | None) -> tuple[int, list[Path]]:
    import multiprocessing as mp
    import queue

    ctx = mp.get_context("fork")
    counter = ctx.Value("q", 0)
    results = ctx.Queue()
    payload = scenario.model_dump_json()
    procs = [ctx.Process(target=_part_main, daemon=True,
                         args=(payload, str(events_dir), k, workers, chunk_events, counter,
                               results)) for k in range(workers)]
    for proc in procs:
        proc.start()
    done: dict[int, tuple[int, list[str]]] = {}
    reported = 0
    try:
        while len(done) < workers:
            try:
                part, value, error = results.get(timeout=0.2)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    raise RuntimeError("a simulation worker died without a result "
                                       "(out of memory?); retry with --workers 1") from None
            else:
                if error is not None:
                    raise RuntimeError(f"simulation worker {part} failed: {error}")
                done[part] = value
            if progress and counter.value > reported:
                progress(counter.value - reported)
                reported = counter.value
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
    return (sum(v[0] for v in done.values()),
            [Path(p) for k in sorted(done) for p in done[k][1]])


def write_dataset(
    scenario: Scenario,
    out: str | os.PathLike[str],
    *,
    chunk_events: int = 20_000,
    workers: int = 1,
    progress: Progress | None = None,
    traffic: SimulatedTraffic | None = None,
) -> SimulationSummary:
    """Simulate ``scenario`` into the dataset directory ``out`` (which must be empty).

    With ``workers`` > 1 the accounts are split across processes, each writing its own
    time-ordered segments (as several gateway replicas would); the events are the same.
    """
    import time

    t0 = time.perf_counter()
    out_dir = Path(out)
    _prepare(out_dir)
    sim = traffic or generate(scenario, chunk_events=chunk_events)
    summary = SimulationSummary(out_dir, accounts=len(sim.plans),
                                attackers=sum(p.label == "attacker" for p in sim.plans))
    events_dir = out_dir / "events"
    if workers > 1:
        events_dir.mkdir(parents=True, exist_ok=True)
        summary.events, summary.segments = _write_parallel(scenario, events_dir, workers,
                                                           chunk_events, progress)
    else:
        for i, chunk in enumerate(sim.chunks()):
            path = write_segment(events_dir, chunk.table, name=f"sim-{scenario.seed}-{i:06d}")
            summary.segments.append(path)
            summary.events += chunk.table.num_rows
            if progress:
                progress(chunk.table.num_rows)
    secret = scenario.secret.encode()
    table = accounts_table(sim.plans, secret)
    tmp = out_dir / ".tmp-accounts.parquet"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, out_dir / "accounts.parquet")
    _atomic_bytes(out_dir / "labels.jsonl", _jsonl(label_records(sim.plans)))
    _atomic_bytes(out_dir / "scenario.yaml", yaml.safe_dump(
        scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True).encode())
    summary.seconds = time.perf_counter() - t0
    return summary


def _interchange_lines(chunk: EventChunk) -> bytes:
    t = chunk.table
    cols = {name: t.column(name).to_pylist() for name in (
        "ts", "org_id", "key_prefix", "region", "endpoint", "request_json", "response_text",
        "finish_reason", "prompt_tokens", "completion_tokens", "status", "latency_ms",
        "error_code", "model")}
    parts: list[bytes] = []
    for i in range(t.num_rows):
        status = cols["status"][i]
        if status < 400:
            response: dict[str, Any] | None = {
                "object": "chat.completion" if cols["endpoint"][i].endswith("chat/completions")
                else "text_completion",
                "model": cols["model"][i],
                "choices": [
                    {"index": 0, "message": {"role": "assistant",
                                             "content": cols["response_text"][i]},
                     "finish_reason": cols["finish_reason"][i]}
                    if cols["endpoint"][i].endswith("chat/completions") else
                    {"index": 0, "text": cols["response_text"][i],
                     "finish_reason": cols["finish_reason"][i]}
                ],
                "usage": {"prompt_tokens": cols["prompt_tokens"][i],
                          "completion_tokens": cols["completion_tokens"][i],
                          "total_tokens": cols["prompt_tokens"][i] + cols["completion_tokens"][i]},
            }
        else:
            response = {"error": {"message": "simulated rate limit", "type": "rate_limit",
                                  "code": cols["error_code"][i]}}
        head = orjson.dumps({
            "ts": cols["ts"][i].isoformat().replace("+00:00", "Z"),
            "org": cols["org_id"][i],
            "key": cols["key_prefix"][i],
            "ip": chunk.ip[i],
            "user_agent": chunk.user_agent[i],
            "region": cols["region"][i],
            "endpoint": cols["endpoint"][i],
        })
        tail = orjson.dumps({"response": response, "status": status,
                             "latency_ms": round(float(cols["latency_ms"][i]), 1)})
        # splice the request body in verbatim: it is already JSON text
        parts.append(head[:-1] + b',"request":' + cols["request_json"][i].encode() + b","
                     + tail[1:] + b"\n")
    return b"".join(parts)


def write_interchange(
    scenario: Scenario,
    out: str | os.PathLike[str],
    *,
    chunk_events: int = 20_000,
    progress: Progress | None = None,
) -> SimulationSummary:
    """Simulate ``scenario`` as interchange files: traffic.jsonl, accounts.jsonl, labels.jsonl."""
    import time

    t0 = time.perf_counter()
    out_dir = Path(out)
    _prepare(out_dir)
    sim = generate(scenario, chunk_events=chunk_events)
    summary = SimulationSummary(out_dir, accounts=len(sim.plans),
                                attackers=sum(p.label == "attacker" for p in sim.plans))
    tmp = out_dir / ".tmp-traffic.jsonl"
    with open(tmp, "wb") as fh:
        for chunk in sim.chunks():
            fh.write(_interchange_lines(chunk))
            summary.events += chunk.table.num_rows
            if progress:
                progress(chunk.table.num_rows)
    os.replace(tmp, out_dir / "traffic.jsonl")
    accounts = [
        {"org": p.org_id, "licence": p.licence, "channel": p.channel,
         "home_region": p.home_region,
         "created": _dt(p.created_us).isoformat().replace("+00:00", "Z"),
         "payment_fingerprint": p.payment}
        for p in sim.plans
    ]
    _atomic_bytes(out_dir / "accounts.jsonl", _jsonl(accounts))
    _atomic_bytes(out_dir / "labels.jsonl", _jsonl(label_records(sim.plans)))
    summary.seconds = time.perf_counter() - t0
    return summary
