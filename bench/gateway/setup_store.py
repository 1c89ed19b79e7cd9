"""Create the benchmark's organization, API key and licence in a fresh data dir and write
the gateway config; prints the API key (the only place it is ever shown).

usage: python setup_store.py DATA_DIR UPSTREAM_PORT GATEWAY_PORT > key.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from distillwarden.config import load_settings
from distillwarden.store import services
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.migrate import upgrade_database


def main() -> None:
    data_dir = Path(sys.argv[1]).resolve()
    upstream_port, gateway_port = int(sys.argv[2]), int(sys.argv[3])
    data_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "data_dir": str(data_dir),
        "host": "127.0.0.1",
        "port": gateway_port,
        "log_level": "warning",
        "upstreams": [
            {
                "name": "fake",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "api_key": "sk-upstream-unused",
                "max_connections": 256,
            }
        ],
        "models": [{"name": "fake-model", "upstream": "fake"}],
        # limits ON but above what one core can serve, so the bench measures their cost
        "limits": {
            "key_requests_per_min": 10_000_000,
            "key_tokens_per_min": 1_000_000_000,
            "org_requests_per_min": 10_000_000,
            "org_tokens_per_min": 1_000_000_000,
        },
    }
    config_path = data_dir / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config))
    settings = load_settings(config_path)
    upgrade_database(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    with session_scope(make_sessionmaker(engine)) as session:
        org = services.create_org(session, name="Bench Org", org_id="org_bench", actor="bench")
        services.set_licence(
            session,
            org.id,
            name="standard",
            channel="direct",
            regions=(),
            models=("fake-*",),
            actor="bench",
            reason="benchmark licence",
        )
        _, key = services.create_api_key(session, settings.secret_bytes(), org.id, actor="bench")
    engine.dispose()
    print(key)


if __name__ == "__main__":
    main()
