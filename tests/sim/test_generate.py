"""Simulated traffic: deterministic, labelled consistently, realistic structure."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from distillwarden.events.importers import import_dataset
from distillwarden.events.record import extract_request_fields
from distillwarden.events.schema import EVENT_SCHEMA
from distillwarden.sim.dataset import Dataset, DatasetError
from distillwarden.sim.generate import generate
from distillwarden.sim.scenario import parse_scenario
from distillwarden.sim.writers import write_dataset, write_interchange


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_gives_identical_bytes(tiny_scenario, tiny_dataset: Path, tmp_path: Path):
    again = tmp_path / "again"
    write_dataset(tiny_scenario, again, chunk_events=400)
    a, b = _files(tiny_dataset), _files(again)
    assert a.keys() == b.keys()
    assert len([k for k in a if k.startswith("events/")]) > 1  # several segments
    for name in a:
        assert a[name] == b[name], name


def test_other_seed_gives_other_traffic(tiny_scenario, tiny_dataset: Path, tmp_path: Path):
    other = tmp_path / "other"
    write_dataset(tiny_scenario.model_copy(update={"seed": 12}), other, chunk_events=400)
    ids_a = set(Dataset.open(tiny_dataset).events(["event_id"]).column(0).to_pylist())
    ids_b = set(Dataset.open(other).events(["event_id"]).column(0).to_pylist())
    assert not ids_a & ids_b


def test_parallel_workers_write_the_same_events(tiny_scenario, tiny_dataset: Path,
                                                tmp_path: Path) -> None:
    summary = write_dataset(tiny_scenario, tmp_path / "par", chunk_events=400, workers=2)
    assert any("p1of2" in p.name for p in summary.segments)
    serial = Dataset.open(tiny_dataset).events().sort_by("event_id")
    parallel = Dataset.open(tmp_path / "par").events().sort_by("event_id")
    assert serial.equals(parallel)


def test_labels_accounts_and_events_agree(tiny_scenario, tiny_dataset: Path) -> None:
    ds = Dataset.open(tiny_dataset)
    labels = ds.labels()
    events = ds.events()
    accounts = ds.accounts()
    assert events.schema.equals(EVENT_SCHEMA, check_metadata=False)
    assert len(labels) == tiny_scenario.account_count() == accounts.num_rows
    assert set(accounts.column("org_id").to_pylist()) == set(labels)
    assert set(pc.unique(events.column("org_id")).to_pylist()) == set(labels)
    counts = defaultdict(int)
    for rec in labels.values():
        counts[(rec["label"], rec["strategy"], rec["cluster"] is not None)] += 1
        if rec["label"] == "benign":
            assert rec["strategy"] is None and rec["attacker_fraction"] == 0.0
    assert counts[("attacker", "harvester", True)] == 12  # the hydra
    acc = {r["org_id"]: r for r in accounts.to_pylist()}
    for org, rec in labels.items():
        if rec["persona"] == "evaluation_lab":
            assert acc[org]["licence"] == "evaluation-permitted"
        if rec["cluster"]:
            assert acc[org]["channel"] == "reseller:apexgate"
    # events are in time order inside each segment, and the channel matches the account
    ts = events.column("ts").cast("int64").to_numpy()
    assert (np.diff(ts) >= 0).mean() > 0.99
    by_org = dict(zip(events.column("org_id").to_pylist(), events.column("channel").to_pylist(),
                      strict=True))
    assert all(by_org[o] == acc[o]["channel"] for o in by_org)


def test_request_columns_match_request_json(tiny_dataset: Path) -> None:
    events = Dataset.open(tiny_dataset).events().slice(0, 300).to_pylist()
    for row in events:
        fields = extract_request_fields(json.loads(row["request_json"]))
        for name, value in fields.items():
            got = row[name]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-6)
            else:
                assert got == value, name
        assert row["status"] in (200, 429)
        assert (row["response_text"] is None) == (row["status"] == 429)


def test_hydra_members_share_infrastructure_only_partially(tiny_dataset: Path) -> None:
    ds = Dataset.open(tiny_dataset)
    labels = ds.labels()
    events = ds.events(["org_id", "ip_net_hash", "ua_hash"]).to_pylist()
    nets, uas = defaultdict(set), defaultdict(set)
    for e in events:
        nets[e["org_id"]].add(e["ip_net_hash"])
        uas[e["org_id"]].add(e["ua_hash"])
    members = [o for o, r in labels.items() if r["cluster"]]
    others = [o for o in labels if o not in members]
    net_owners = defaultdict(set)
    for o in members:
        for n in nets[o]:
            net_owners[n].add(o)
    linked = {o for n, owners in net_owners.items() if len(owners) > 1 for o in owners}
    assert 0 < len(linked) < len(members), "some but not all members share a /24"
    other_nets = set().union(*(nets[o] for o in others))
    assert not other_nets & set(net_owners), "benign accounts do not use the proxy ranges"
    pay = {r["org_id"]: r["payment_fingerprint_hash"] for r in ds.accounts().to_pylist()}
    shared_pay = [o for o in members if sum(pay[o] == pay[m] for m in members) > 1]
    assert len(shared_pay) < len(members)


@pytest.mark.parametrize("fraction", [0.2, 0.05])
def test_mixing_fraction_is_realised(fraction: float) -> None:
    scenario = parse_scenario(
        f"name: mix\nseed: 3\ndays: 3\nmixers:\n  - host: chat_app\n    strategy: cot_extractor\n"
        f"    fractions: [{fraction}]\n    count: 3\n    volume_per_day: {{median: 300, sigma: 0.1}}\n"
    )
    sim = generate(scenario, chunk_events=2000)
    per_org: dict[str, list[bool]] = defaultdict(list)
    for chunk in sim.chunks():
        for org, flag in zip(chunk.table.column("org_id").to_pylist(), chunk.is_attack,
                             strict=True):
            per_org[org].append(bool(flag))
    assert len(per_org) == 3
    for flags in per_org.values():
        assert len(flags) > 500
        assert abs(np.mean(flags) - fraction) < 0.01


def test_benign_timing_is_diurnal(tiny_dataset: Path) -> None:
    ds = Dataset.open(tiny_dataset)
    labels = ds.labels()
    ev = ds.events(["org_id", "ts"])
    hours = pc.hour(ev.column("ts")).to_numpy()
    orgs = ev.column("org_id").to_pylist()
    benign = np.array([labels[o]["persona"] in ("coding_assistant", "support_bot") for o in orgs])
    # office personas in UTC-5..+10 zones: the busiest hour carries several times the quietest
    counts = np.bincount(hours[benign], minlength=24)
    assert counts.max() > 3 * max(1, counts.min())


def test_interchange_round_trips_through_the_importer(tiny_scenario, tmp_path: Path) -> None:
    out = tmp_path / "jsonl"
    summary = write_interchange(tiny_scenario, out, chunk_events=500)
    first = json.loads((out / "traffic.jsonl").open().readline())
    assert {"ts", "org", "key", "ip", "user_agent", "endpoint", "request", "status"} <= set(first)
    assert first["ts"].endswith("Z")
    report = import_dataset(out / "traffic.jsonl", tmp_path / "imported", b"secret",
                            accounts_path=out / "accounts.jsonl",
                            labels_path=out / "labels.jsonl")
    assert report.imported == summary.events
    ds = Dataset.open(tmp_path / "imported")
    assert len(ds.labels()) == summary.accounts
    assert ds.events(["event_id"]).num_rows == summary.events


def test_refuses_to_overwrite(tiny_scenario, tiny_dataset: Path) -> None:
    with pytest.raises(FileExistsError, match="not empty"):
        write_dataset(tiny_scenario, tiny_dataset)


def test_dataset_open_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a directory"):
        Dataset.open(tmp_path / "none")
    (tmp_path / "d" / "events").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no event segments"):
        Dataset.open(tmp_path / "d")
