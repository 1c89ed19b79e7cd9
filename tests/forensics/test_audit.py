"""End-to-end audits on loopback: a suspect that serves our watermarked model, a suspect
that is some other model, and the CLI on a corpus."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from distillwarden.forensics.audit import AuditOptions, run_audit
from distillwarden.forensics.canaries import Canary
from distillwarden.forensics.cli import register
from distillwarden.forensics.reference import LocalReference
from distillwarden.forensics.report import write_report
from distillwarden.forensics.suspect import CorpusSuspect, EndpointSuspect, ForensicsError
from distillwarden.upstream.server import BackgroundServer
from distillwarden.watermark import derive_account_key

pytestmark = pytest.mark.model

LEAKER = "org_alice"
WM_HEADER = json.dumps({"gamma": 0.25, "delta": 2.5, "context_width": 2})

SMALL = dict(
    prompts=[
        "Write a short story about a lighthouse keeper.",
        "Explain how rain forms.",
        "Describe a busy market in the morning.",
        "Tell a story about a robot who paints.",
    ],
    max_tokens=60,
    identity_probes=[
        "Which model are you?",
        "Who created you?",
        "What is your name?",
        "Introduce yourself in one sentence.",
    ],
    fingerprint_prompts=[
        "What is 17 times 23?",
        "Name the largest planet.",
        "List three primary colours.",
        "Who wrote 'Romeo and Juliet'?",
        "What is the capital of Australia?",
        "Translate 'good morning' into French.",
    ],
    probe_max_tokens=24,
    permutations=999,
    keyed_canaries=2,
)


class _AsAccount:
    """ASGI wrapper: every request reaches the local model as account ``org_alice`` with the
    watermark on — a reseller passing our watermarked outputs off as its own model."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [h for h in scope["headers"] if not h[0].startswith(b"x-distillwarden")]
            headers += [
                (b"x-distillwarden-org", LEAKER.encode()),
                (b"x-distillwarden-watermark", WM_HEADER.encode()),
            ]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def rebranded_suspect(local_model: Any, master_secret: bytes) -> Iterator[BackgroundServer]:
    from distillwarden.upstream.local import create_local_app

    inner = create_local_app(master_secret=master_secret, local_model=local_model)
    with BackgroundServer(_AsAccount(inner)) as srv:
        yield srv


def _other_model(answers: list[str]) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        i = int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(answers)
        return JSONResponse(
            {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answers[i]},
                        "finish_reason": "stop",
                    }
                ]
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.mark.slow
def test_rebranded_model_is_caught(
    rebranded_suspect: BackgroundServer,
    local_model: Any,
    wm_config: Any,
    master_secret: bytes,
    tmp_path: Path,
) -> None:
    names = [LEAKER, "org_bob", "org_carol", "org_dave"]
    keys = {n: derive_account_key(master_secret, n) for n in names}
    canaries = [
        Canary(LEAKER, "the keeper of the lighthouse"),
        Canary("", "zorblat quench", decoy=True),
    ]
    report = run_audit(
        EndpointSuspect(rebranded_suspect.base_url, "rival-1"),
        tokenizer=local_model.tokenizer,
        keys=keys,
        config=wm_config,
        reference=LocalReference(local_model),
        options=AuditOptions(**SMALL, canaries=canaries),  # type: ignore[arg-type]
    )
    radio = report.radioactivity
    assert radio is not None and [a.account for a in radio.attributed] == [LEAKER]
    assert radio.accounts[0].log10_p_holm < -5
    assert report.fingerprint is not None and report.fingerprint.p_value < 0.05
    assert report.fingerprint.matched_mean > report.fingerprint.null_mean
    assert report.verdict == "evidence_found"
    assert any(LEAKER in f for f in report.findings)
    paths = write_report(report, tmp_path / "audit")
    data = json.loads(paths["json"].read_text())
    assert data["verdict"] == "evidence_found"
    assert data["radioactivity"]["attributed"] == [LEAKER]
    assert data["limits"] and data["skipped"] == {}
    html = paths["html"].read_text()
    assert "<script" not in html and not re.search(r"\b(src|href)=", html)  # self-contained
    assert LEAKER in html and "Limits of this evidence" in html


def test_unrelated_model_shows_no_evidence(
    clean_texts: list[str], local_model: Any, wm_config: Any, master_secret: bytes
) -> None:
    keys = {n: derive_account_key(master_secret, n) for n in [LEAKER, "org_bob"]}
    with BackgroundServer(_other_model(clean_texts[:200])) as srv:
        report = run_audit(
            EndpointSuspect(srv.base_url, "other"),
            tokenizer=local_model.tokenizer,
            keys=keys,
            config=wm_config,
            reference=LocalReference(local_model),
            options=AuditOptions(**SMALL),  # type: ignore[arg-type]
        )
    assert report.radioactivity is not None and not report.radioactivity.attributed
    assert report.fingerprint is not None and report.fingerprint.p_value > 0.01
    assert report.verdict == "no_significant_evidence"
    assert "canaries" in report.skipped


def test_unreachable_endpoint_is_a_clear_error() -> None:
    from distillwarden.upstream.server import free_port

    suspect = EndpointSuspect(f"http://127.0.0.1:{free_port()}/v1", "x", retries=0)
    with pytest.raises(ForensicsError, match="cannot reach"):
        suspect.generate(["hi"], max_tokens=4, temperature=0)


def _cli() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None: ...

    register(root)
    return root


def _audit_corpus(
    tmp_path: Path, secret: bytes, corpus: Path, *extra: str
) -> tuple[Result, Path]:
    """``forensics audit`` of ``corpus`` for the leaker and org_bob with the test watermark
    settings (plus ``extra`` options); the CLI result and the report folder."""
    config = tmp_path / "dw.yaml"
    config.write_text(f"secret: {secret.decode()}\ndata_dir: {tmp_path / 'data'}\n")
    out = tmp_path / "report"
    result = CliRunner().invoke(
        _cli(),
        [
            "forensics", "audit", "--corpus", str(corpus), "--config", str(config),
            "--account", LEAKER, "--account", "org_bob", *extra,
            "--watermark", WM_HEADER, "--out", str(out),
        ],
    )
    return result, out


def test_cli_audits_a_corpus(
    watermarked_texts: list[str], clean_texts: list[str], master_secret: bytes, tmp_path: Path
) -> None:
    corpus = tmp_path / "suspect.jsonl"
    with corpus.open("w") as fh:
        for text in watermarked_texts + clean_texts[:12]:
            fh.write(json.dumps({"text": text}) + "\n")
    result, out = _audit_corpus(tmp_path, master_secret, corpus)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["verdict"] == "evidence_found"
    data = json.loads((out / "audit.json").read_text())
    assert data["mode"] == "corpus"
    assert data["radioactivity"]["attributed"] == [LEAKER]
    assert set(data["skipped"]) == {"identity", "fingerprint", "canaries"}
    assert (out / "audit.html").stat().st_size > 1000


def test_cli_needs_exactly_one_suspect_and_some_accounts(tmp_path: Path) -> None:
    r = CliRunner().invoke(_cli(), ["forensics", "audit", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "exactly one suspect" in r.output
    corpus = tmp_path / "c.txt"
    corpus.write_text("some text")
    config = tmp_path / "dw.yaml"
    config.write_text(f"secret: s\ndata_dir: {tmp_path / 'data'}\n")
    r = CliRunner().invoke(
        _cli(),
        [
            "forensics",
            "audit",
            "--corpus",
            str(corpus),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 2 and "--account" in r.output


def test_corpus_errors_are_clear(tmp_path: Path) -> None:
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x00\x01\x02")
    with pytest.raises(ForensicsError, match="binary"):
        CorpusSuspect.read(str(binary))
    empty = tmp_path / "e.jsonl"
    empty.write_text('{"other": 1}\n')
    with pytest.raises(ForensicsError, match="field"):
        CorpusSuspect.read(str(empty))


def test_cli_takes_served_texts_from_the_event_log(
    watermarked_texts: list[str], clean_texts: list[str], master_secret: bytes, tmp_path: Path
) -> None:
    import datetime as dt

    import pyarrow as pa

    from distillwarden.events.writer import write_segment

    now = dt.datetime.now(dt.UTC)
    orgs = [LEAKER] * len(watermarked_texts) + ["org_bob"] * 5
    served = watermarked_texts + clean_texts[:5]
    table = pa.table(
        {
            "event_id": [f"evt_{i}" for i in range(len(orgs))],
            "ts": [now] * len(orgs),
            "org_id": orgs,
            "endpoint": ["/v1/chat/completions"] * len(orgs),
            "status": [200] * len(orgs),
            "response_text": served,
        }
    )
    events = tmp_path / "events"
    write_segment(events, table)
    corpus = tmp_path / "suspect.txt"
    corpus.write_text("\n\n".join(watermarked_texts[:4] + clean_texts[20:40]))
    result, out = _audit_corpus(tmp_path, master_secret, corpus, "--events", str(events))
    assert result.exit_code == 0, result.output
    radio = json.loads((out / "audit.json").read_text())["radioactivity"]
    assert radio["filtered_to_received_contexts"] is True
    assert radio["scored_pairs"] < radio["pairs_before_filter"]
    assert radio["attributed"] == [LEAKER]


def _store_config(tmp_path: Path, secret: bytes, licences: dict[str, dict[str, Any]]) -> Path:
    from distillwarden.config import load_settings
    from distillwarden.store import services
    from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
    from distillwarden.store.migrate import upgrade_database

    config = tmp_path / "dw.yaml"
    config.write_text(f"secret: {secret.decode()}\ndata_dir: {tmp_path / 'data'}\n")
    settings = load_settings(config)
    upgrade_database(settings.effective_database_url)
    factory = make_sessionmaker(make_engine(settings.effective_database_url))
    with session_scope(factory) as s:
        for org, wm in licences.items():
            services.create_org(s, name=org, org_id=org, actor="test")
            services.set_licence(s, org, watermark=wm, actor="test", reason="test")
    return config


def test_cli_reads_watermark_settings_from_the_licences(
    watermarked_texts: list[str], master_secret: bytes, tmp_path: Path
) -> None:
    config = _store_config(
        tmp_path,
        master_secret,
        {LEAKER: {"delta": 2.5}, "org_bob": {"delta": 1.0}, "org_wide": {"gamma": 0.5}},
    )
    corpus = tmp_path / "suspect.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in watermarked_texts))
    base = ["forensics", "audit", "--corpus", str(corpus), "--config", str(config)]
    ok = CliRunner().invoke(
        _cli(), [*base, "--account", LEAKER, "--account", "org_bob", "--out", str(tmp_path / "a")]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "a" / "audit.json").read_text())["radioactivity"][
        "attributed"
    ] == [LEAKER]
    mixed = CliRunner().invoke(
        _cli(), [*base, "--account", LEAKER, "--account", "org_wide", "--out", str(tmp_path / "b")]
    )
    assert mixed.exit_code == 2
    assert "different green-list settings" in mixed.output and "org_wide" in mixed.output
