"""Console benchmark: how long the accounts page (risk-ranked), a search, an account page
and the audit page take with many accounts and findings (a large hydra).

    python bench/console/run.py [--orgs 5000] [--findings-per-org 3] [--out bench/results/console.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from distillwarden import __version__
from distillwarden.config import load_settings
from distillwarden.console import create_console_app
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.migrate import upgrade_database
from distillwarden.store.models import Finding, Licence, Organization, utcnow


def _fill(factory: Any, orgs: int, per_org: int) -> None:
    now = utcnow()
    with session_scope(factory) as s:
        for i in range(orgs):
            org_id = f"acct-{i:06d}"
            s.add(Organization(id=org_id, name=f"Account {i}", status="active",
                               created_at=now, metadata_={}))
            s.add(Licence(id=f"lic-{i:06d}", org_id=org_id, channel="direct", regions=[],
                          permitted_uses=["inference"], models=["*"], watermark={},
                          active=True, created_at=now))
            for j in range(per_org):
                s.add(Finding(id=f"f-{i:06d}-{j}", org_id=org_id, detector="distillation-score",
                              risk=((i * 7919 + j * 104729) % 1000) / 1000,
                              signals={"template_reuse": 0.5}, evidence={"n": j},
                              created_at=now - timedelta(hours=per_org - j)))
            if i % 1000 == 999:
                s.flush()


def _time(client: TestClient, url: str, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        resp = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, (url, resp.status_code)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orgs", type=int, default=5000)
    parser.add_argument("--findings-per-org", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results/console.json"))
    args = parser.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, data_dir=Path(tmp), secret="bench", admin_token="bench")
        upgrade_database(settings.effective_database_url)
        engine = make_engine(settings.effective_database_url)
        factory = make_sessionmaker(engine)
        t0 = time.perf_counter()
        _fill(factory, args.orgs, args.findings_per_org)
        fill_s = time.perf_counter() - t0
        app = Starlette(routes=[Mount("/console", create_console_app(settings, factory))])
        with TestClient(app, base_url="http://127.0.0.1") as client:
            client.post("/console/login", data={"token": "bench", "name": "bench"})
            pages = {
                "accounts_risk_ranked": _time(client, "/console/accounts", args.repeat),
                "accounts_search": _time(client, "/console/accounts?q=acct-0004", args.repeat),
                "account_detail": _time(client, "/console/accounts/acct-000042", args.repeat),
                "audit": _time(client, "/console/audit", args.repeat),
            }
        engine.dispose()
    results = {
        "benchmark": "console",
        "distillwarden": __version__,
        "python": platform.python_version(),
        "orgs": args.orgs,
        "findings": args.orgs * args.findings_per_org,
        "fill_s": round(fill_s, 1),
        "store": "sqlite",
        "pages": pages,
        "note": "TestClient in-process, shared 2-core machine; accounts page lists 200 rows",
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
