"""Store benchmark: status changes (service + audit + change feed + commit), concurrent
audit appends, and chain verification, on SQLite and on a real PostgreSQL server.

    python bench/store/run.py [--changes 1000] [--chain 20000] [--out bench/results/store.json]

PostgreSQL runs with its default durability (fsync on) so the numbers are honest; SQLite
uses the store's defaults (WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import text

from distillwarden import __version__
from distillwarden.store import audit, services
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.migrate import upgrade_database
from distillwarden.store.pgtemp import PostgresUnavailable, TemporaryPostgres


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def bench_status_changes(url: str, n: int) -> dict[str, Any]:
    """``set_status`` round trips (validation, status row, audit append, change feed,
    commit), alternating warned/active on 20 accounts."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        for i in range(20):
            services.create_org(s, name=f"Org {i}", org_id=f"org-{i}", actor="bench")
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(n):
        org = f"org-{i % 20}"
        status = "warned" if (i // 20) % 2 == 0 else "active"
        start = time.perf_counter()
        with session_scope(factory) as s:
            services.set_status(s, org, status, actor="bench", reason="benchmark")
        lat.append((time.perf_counter() - start) * 1000)
    wall = time.perf_counter() - t0
    engine.dispose()
    return {
        "changes": n,
        "per_s": round(n / wall, 1),
        "p50_ms": round(statistics.median(lat), 3),
        "p99_ms": round(_pct(lat, 0.99), 3),
    }


def bench_concurrent_appends(url: str, threads: int, per_thread: int) -> dict[str, Any]:
    """Appenders in parallel threads, one transaction per entry; the chain must verify."""
    engine = make_engine(url, pool_size=threads + 2) if url.startswith("postgres") \
        else make_engine(url)
    factory = make_sessionmaker(engine)
    errors: list[str] = []
    barrier = threading.Barrier(threads)

    def work(w: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            try:
                with session_scope(factory) as s:
                    audit.append(s, actor=f"w{w}", action="bench.append", subject_type="t",
                                 subject_id=f"{w}-{i}", payload={"i": i})
            except Exception as exc:
                errors.append(repr(exc))

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    with session_scope(factory) as s:
        result = audit.verify(s)
    engine.dispose()
    return {
        "threads": threads,
        "appends": threads * per_thread,
        "per_s": round(threads * per_thread / wall, 1),
        "errors": len(errors),
        "chain_ok": result.ok,
    }


def bench_verify(url: str, chain: int) -> dict[str, Any]:
    """Verify a chain of ``chain`` entries in the database and as an exported file."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        existing = s.scalar(text("SELECT count(*) FROM audit_log")) or 0
        for i in range(max(0, chain - existing)):
            audit.append(s, actor="bench", action="bench.fill", subject_type="t",
                         subject_id=str(i), reason="fill", payload={"i": i, "note": "x" * 40})
    t0 = time.perf_counter()
    with session_scope(factory) as s:
        result = audit.verify(s)
    db_s = time.perf_counter() - t0
    buf = io.StringIO()
    with session_scope(factory) as s:
        audit.export_jsonl(s, buf)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        fh.write(buf.getvalue())
        path = fh.name
    t0 = time.perf_counter()
    file_result = audit.verify_file(path)
    file_s = time.perf_counter() - t0
    os.unlink(path)
    engine.dispose()
    return {
        "entries": result.count,
        "ok": result.ok and file_result.ok,
        "db_entries_per_s": round(result.count / db_s),
        "file_entries_per_s": round(file_result.count / file_s),
    }


def run_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    upgrade_database(url)
    print(f"[{name}] status changes …", flush=True)
    out: dict[str, Any] = {"status_changes": bench_status_changes(url, args.changes)}
    print(f"[{name}] concurrent appends …", flush=True)
    out["concurrent_appends"] = bench_concurrent_appends(url, 4, args.changes // 4)
    print(f"[{name}] verification …", flush=True)
    out["verify"] = bench_verify(url, args.chain)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/store.json"))
    args = parser.parse_args()

    results: dict[str, Any] = {
        "benchmark": "store",
        "distillwarden": __version__,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "note": "shared machine (other jobs running); PostgreSQL with fsync on",
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["backends"]["sqlite"] = run_backend(
            "sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args)
    try:
        with TemporaryPostgres(fast=False) as pg:
            engine = make_engine(pg.url)
            with engine.connect() as conn:
                results["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
            engine.dispose()
            results["backends"]["postgresql"] = run_backend("postgresql", pg.url, args)
    except PostgresUnavailable as exc:
        results["backends"]["postgresql"] = {"skipped": str(exc)}
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
