"""The console in a real browser (Debian chromium via Playwright): log in, open an account,
suspend it through the form, and check the database."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.routing import Mount

from distillwarden.config import Settings
from distillwarden.console import create_console_app
from distillwarden.store.db import session_scope
from distillwarden.store.models import Organization

from .seed import seed

CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


pytestmark = pytest.mark.browser


def _seed_real_finding(settings: Settings, factory: sessionmaker[Session]) -> None:
    """A finding in the detector's format, with example requests in the event log."""
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from distillwarden.events.writer import write_segment
    from distillwarden.store.models import Finding

    now = datetime.now(UTC)
    rows = [
        {
            "event_id": f"evt_{i}",
            "ts": now - timedelta(minutes=i),
            "org_id": "sinoquant",
            "endpoint": "/v1/chat/completions",
            "model": "smollm2-135m",
            "status": 200,
            "region": "SG",
            "key_prefix": "sk-dw-Ab12",
            "last_user_text": f"Q{i}: Think step by step and show every intermediate step. "
            f"A train leaves at {i + 3} pm…",
            "response_text": "Step 1: identify the quantities. Step 2: …",
        }
        for i in range(2)
    ]
    write_segment(settings.effective_events_dir, pa.Table.from_pylist(rows))
    with session_scope(factory) as s:
        s.add(
            Finding(
                id="fnd_real",
                org_id="sinoquant",
                detector="distillation-detector",
                risk=0.99,
                p_value=3e-7,
                threshold_fpr=0.001,
                window_start=now - timedelta(hours=1),
                window_end=now,
                created_at=now + timedelta(seconds=1),
                signals={
                    "cot_elicitation_share": {
                        "p_value": 2e-6,
                        "value": 0.91,
                        "requests": 1830,
                        "means": "share of prompts asking for step-by-step reasoning",
                        "example_request_ids": ["evt_0", "evt_1"],
                    },
                    "benchmark_overlap": {
                        "p_value": 4e-4,
                        "value": 0.37,
                        "requests": 412,
                        "means": "share of prompts matching public benchmark items",
                        "example_request_ids": [],
                    },
                },
                evidence={"requests": 51234, "channel": "reseller:cloudco", "licence": "standard"},
            )
        )


@pytest.fixture
def console_url(tmp_settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[str]:
    import uvicorn

    seed(session_factory)
    _seed_real_finding(tmp_settings, session_factory)
    app = Starlette(routes=[Mount("/console", create_console_app(tmp_settings, session_factory))])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "console server did not start"
    yield f"http://127.0.0.1:{port}/console"
    server.should_exit = True
    thread.join(timeout=10)


def test_login_view_and_suspend_in_browser(
    console_url: str, tmp_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = Path(os.environ.get("DW_SCREENSHOT_DIR", "."))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-gpu",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{console_url}/accounts/sinoquant")
            assert "/login" in page.url
            if os.environ.get("DW_SCREENSHOT_DIR"):
                page.screenshot(path=str(shots / "console-login.png"))
            page.fill("#name", "kim")
            page.fill("#token", tmp_settings.admin_token or "")
            page.click("button[type=submit]")
            page.wait_for_url("**/accounts/sinoquant")
            assert page.locator("h1").first.inner_text().startswith("Sinoquant Research")
            assert page.locator("text=template_reuse").count() >= 1

            page.select_option("#status-select", "suspended")
            page.fill("#reason", "Benchmark sweeps via reseller; pending investigation")
            page.fill("#case_id", "case_sino")
            page.click("#apply-status")
            page.locator(".alert-ok").wait_for()
            assert "Status set to suspended" in page.locator(".alert-ok").inner_text()
            assert page.locator("h1 .badge-suspended").count() == 1
            page.click("text=Examples (2)")
            sync_api.expect(page.locator(".example")).to_have_count(2, timeout=10_000)
            if os.environ.get("DW_SCREENSHOT_DIR"):
                page.screenshot(path=str(shots / "console-account.png"), full_page=True)
                page.goto(f"{console_url}/accounts")
                page.screenshot(path=str(shots / "console-accounts.png"), full_page=True)
                page.goto(f"{console_url}/clusters")
                page.screenshot(path=str(shots / "console-clusters.png"), full_page=True)
                page.goto(f"{console_url}/audit")
                page.screenshot(path=str(shots / "console-audit.png"), full_page=True)
                page.goto(f"{console_url}/cases/case_sino")
                page.screenshot(path=str(shots / "console-case.png"), full_page=True)
            page.goto(f"{console_url}/accounts")
            assert page.locator("#account-rows tr").count() == 5
            page.fill("#q", "hydra")
            sync_api.expect(page.locator("#account-rows tr")).to_have_count(3, timeout=10_000)
            assert "q=hydra" in page.url  # hx-push-url keeps the search in the address bar
            assert errors == [], f"browser console errors: {errors}"
        finally:
            browser.close()
    with session_scope(session_factory) as s:
        org = s.get(Organization, "sinoquant")
        assert org is not None
        assert org.status == "suspended" and org.status_actor == "console:kim"
        assert org.status_reason == "Benchmark sweeps via reseller; pending investigation"
