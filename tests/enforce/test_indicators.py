"""STIX 2.1 indicator export/import: matching across providers without sharing content."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import stix2
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.enforce.indicators import (
    IndicatorError,
    export_indicators,
    import_indicators,
    skeletons,
)
from distillwarden.events.writer import write_segment
from distillwarden.store import services
from distillwarden.store.db import session_scope
from distillwarden.store.models import Cluster

SECRET = b"installation-secret"
TEMPLATE = "Solve the problem below. Think step by step and show every intermediate step. " \
           "Problem: {q} Answer in the format 'Final answer: N'."
QUESTIONS = [
    "A farmer has {a} cows and buys {b} more; how many cows now?",
    "What is {a} times {b} minus seven?",
    "If a train leaves at {a} and travels {b} km, when does it arrive?",
    "Compute the sum of the first {a} odd numbers plus {b}.",
    "How many ways can {a} people sit around a table with {b} chairs?",
]
BENIGN = [
    "Write a haiku about the sea in autumn",
    "Summarise this meeting: we agreed to ship on Friday and fix the login bug",
    "Translate 'good morning, how are you' into German",
    "What is a good name for a bakery in Lisbon?",
    "Help me write a cover letter for a nursing job",
    "Explain the difference between TCP and UDP for a beginner",
]


def _rows(org: str, prompts: list[str], net: str | None = None) -> list[dict[str, object]]:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        {"event_id": f"evt_{org}_{i}", "ts": t0 + timedelta(minutes=i), "org_id": org,
         "endpoint": "/v1/chat/completions", "status": 200, "last_user_text": p,
         "prompt_text": p, "ip_net_hash": net, "ua_hash": None}
        for i, p in enumerate(prompts)
    ]


def _attack(n: int, seed: int) -> list[str]:
    return [TEMPLATE.format(q=QUESTIONS[(i + seed) % len(QUESTIONS)].format(a=i * 3 + seed,
                                                                              b=i + 11))
            for i in range(n)]


@pytest.fixture
def provider_a(session_factory: sessionmaker[Session], tmp_path: Path
               ) -> tuple[sessionmaker[Session], Path]:
    events = tmp_path / "a-events"
    rows = _rows("attacker-one", _attack(12, 0), net="net-hash-1") + _rows("attacker-two", _attack(9, 2),
                                                                 net="net-hash-1")
    for j in range(25):  # benign accounts, some sharing common phrasing
        rows += _rows(f"b{j}", [BENIGN[(j + k) % len(BENIGN)] + f" #{k}" for k in range(6)],
                      net=f"net-b{j}")
    write_segment(events, pa.Table.from_pylist(rows))
    with session_scope(session_factory) as s:
        for org in ["attacker-one", "attacker-two"] + [f"b{j}" for j in range(25)]:
            services.create_org(s, org_id=org, name=org.upper(), actor="t",
                                payment_fingerprint_hash="pay-1" if org.startswith("attacker") else None)
        s.add(Cluster(id="hydra-7", members=["attacker-one", "attacker-two"], score=0.98))
    return session_factory, events


def test_skeleton_collapses_slots() -> None:
    a = skeletons(TEMPLATE.format(q="What is 3 times 4?"))
    b = skeletons(TEMPLATE.format(q="Name 'the' biggest of 17 and 99 please now"))
    assert a[0] == b[0] and a[0].startswith("head6:solve the problem below")
    assert skeletons("hi") == []


def test_export_shares_no_content_and_import_finds_same_template_elsewhere(
    provider_a: tuple[sessionmaker[Session], Path], tmp_path: Path
) -> None:
    db, events = provider_a
    with db() as s:
        bundle = export_indicators(s, events, installation_secret=SECRET,
                                   cluster_ids=["hydra-7"], producer="Provider A", tlp="amber")
    text = bundle.serialize()
    for leaked in ("farmer", "Solve", "attacker-one", "attacker-two", "hydra-7", "net-hash-1", "pay-1"):
        assert leaked not in text, leaked
    doc = json.loads(text)
    types = [o["type"] for o in doc["objects"]]
    assert "identity" in types and "marking-definition" in types
    assert "x-distillwarden-cluster-summary" in types
    summary = next(o for o in doc["objects"] if o["type"] == "x-distillwarden-cluster-summary")
    assert summary["size"] == 2 and summary["requests"] == 21
    kinds = {o.get("x_distillwarden_kind") for o in doc["objects"] if o["type"] == "indicator"}
    assert {"template", "ip_net", "payment"} <= kinds
    assert stix2.parse(text, allow_custom=True)  # valid STIX 2.1

    # Provider B: another installation, same template in x1, benign y1
    b_events = tmp_path / "b-events"
    write_segment(b_events, pa.Table.from_pylist(
        _rows("x1", _attack(6, 4)) + _rows("y1", [BENIGN[k % 6] for k in range(8)])))
    path = tmp_path / "shared.json"
    path.write_text(text)
    rep = import_indicators(path, b_events, installation_secret=b"other-installation")
    assert set(rep.accounts()) == {"x1"}
    assert rep.producer == "Provider A" and rep.cluster_summaries[0]["size"] == 2
    # infrastructure hashes are keyed with A's installation secret: reported, not matched
    assert any("another installation" in n for n in rep.not_matchable)


def test_same_installation_matches_infrastructure(
    provider_a: tuple[sessionmaker[Session], Path], tmp_path: Path
) -> None:
    db, events = provider_a
    with db() as s:
        bundle = export_indicators(s, events, installation_secret=SECRET, org_ids=["attacker-one"])
    other = tmp_path / "region-2"
    write_segment(other, pa.Table.from_pylist(_rows("z9", ["unrelated question here"],
                                                    net="net-hash-1")))
    with db() as s:
        rep = import_indicators(json.loads(bundle.serialize()), other,
                                installation_secret=SECRET, session=s)
    kinds = {(m.kind, m.org_id) for m in rep.matches}
    assert ("ip_net", "z9") in kinds
    assert ("payment", "attacker-one") in kinds and ("payment", "attacker-two") in kinds


def test_benign_common_phrasing_is_not_exported(
    provider_a: tuple[sessionmaker[Session], Path]
) -> None:
    db, events = provider_a
    with db() as s:
        bundle = export_indicators(s, events, installation_secret=SECRET, org_ids=["b0"],
                                   min_count=3)
    kinds = [o.get("x_distillwarden_kind") for o in json.loads(bundle.serialize())["objects"]
             if o["type"] == "indicator"]
    assert "template" not in kinds


def test_bad_bundles_and_targets(provider_a: tuple[sessionmaker[Session], Path],
                                 tmp_path: Path) -> None:
    db, events = provider_a
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(IndicatorError, match="not a STIX bundle"):
        import_indicators(bad, events, installation_secret=SECRET)
    bad.write_text("{nope")
    with pytest.raises(IndicatorError, match="not JSON"):
        import_indicators(bad, events, installation_secret=SECRET)
    with db() as s, pytest.raises(IndicatorError, match="ghost"):
        export_indicators(s, events, installation_secret=SECRET, org_ids=["ghost"])
    with db() as s, pytest.raises(IndicatorError, match="TLP"):
        export_indicators(s, events, installation_secret=SECRET, org_ids=["attacker-one"], tlp="purple")
