"""A small, realistic store for console tests: a legitimate app, a reseller-licensed
customer caught distilling, and a three-account hydra cluster."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from distillwarden.store import services
from distillwarden.store.db import session_scope
from distillwarden.store.models import Case, CaseEntry, Cluster, Finding, utcnow

SECRET = b"console-test-secret"


def seed(factory: sessionmaker[Session]) -> None:
    """Create the accounts, findings, a cluster and a case."""
    now = utcnow()
    with session_scope(factory) as s:
        services.create_org(
            s,
            name="Helpful Notes App",
            org_id="notes-app",
            actor="seed",
            home_region="US",
            contact_email="ops@notes.example",
        )
        services.set_licence(s, "notes-app", actor="seed", reason="self-serve signup")
        services.create_api_key(s, SECRET, "notes-app", name="production", actor="seed")

        services.create_org(
            s,
            name="Sinoquant Research",
            org_id="sinoquant",
            tier="strategic",
            actor="seed",
            home_region="SG",
        )
        services.set_licence(
            s,
            "sinoquant",
            channel="reseller:cloudco",
            regions=["SG", "JP"],
            permitted_uses=["inference"],
            actor="seed",
            reason="licensed through CloudCo marketplace",
        )
        services.create_api_key(s, SECRET, "sinoquant", name="batch", actor="seed")

        for i in range(1, 4):
            org_id = f"hydra-{i}"
            services.create_org(s, name=f"Freelance Dev {i}", org_id=org_id, actor="seed")
            services.set_licence(s, org_id, actor="seed", reason="self-serve signup")

        s.add(
            Finding(
                id="fnd_sino",
                org_id="sinoquant",
                detector="distillation-score",
                risk=0.98,
                p_value=2.1e-9,
                threshold_fpr=0.001,
                signals={
                    "template_reuse": 0.94,
                    "benchmark_overlap": 0.71,
                    "cot_elicitation": 0.88,
                    "output_harvest_ratio": 0.66,
                },
                evidence={
                    "examples": ["evt_01", "evt_02", "evt_03"],
                    "top_template": "Solve step by step and show all reasoning: {problem}",
                    "benchmarks": {"gsm8k": 412, "mmlu": 1290},
                    "requests": 51234,
                },
                window_start=now - timedelta(days=7),
                window_end=now,
                created_at=now,
            )
        )
        s.add(
            Finding(
                id="fnd_notes",
                org_id="notes-app",
                detector="distillation-score",
                risk=0.04,
                signals={"template_reuse": 0.02},
                evidence={},
                created_at=now,
            )
        )
        for i in range(1, 4):
            s.add(
                Finding(
                    id=f"fnd_h{i}",
                    org_id=f"hydra-{i}",
                    cluster_id="cl_hydra",
                    detector="hydra-linker",
                    risk=0.91 - i / 100,
                    signals={"shared_ip_net": 1.0, "shared_payment": 1.0},
                    evidence={"cluster_size": 3},
                    created_at=now,
                )
            )
        s.add(
            Cluster(
                id="cl_hydra",
                members=["hydra-1", "hydra-2", "hydra-3"],
                evidence={"shared_ip_nets": 2, "shared_payment_fingerprints": 1},
                score=0.93,
                created_at=now,
            )
        )
        s.add(
            Case(
                id="case_sino",
                title="Sinoquant: suspected distillation via reseller",
                org_id="sinoquant",
                opened_by="analyst:kim",
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        s.add(
            CaseEntry(
                case_id="case_sino",
                kind="note",
                actor="analyst:kim",
                at=now,
                body={"text": "Benchmark sweeps and CoT elicitation in the last week."},
            )
        )
        s.add(
            CaseEntry(
                case_id="case_sino",
                kind="evidence",
                actor="analyst:kim",
                at=now,
                body={"finding": "fnd_sino", "risk": 0.98},
            )
        )
