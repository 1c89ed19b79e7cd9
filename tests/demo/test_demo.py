"""The README's main command, end to end (slow: real model on CPU, a few minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from distillwarden._net import free_port
from distillwarden.demo import run_demo
from distillwarden.demo.runner import clip_prompt, write_demo_config


def test_clip_prompt_cuts_messages_and_prompt() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 5000}, {"role": "tool"}],
            "prompt": "y" * 3000}
    out = clip_prompt(body, max_chars=100)
    assert len(out["messages"][0]["content"]) == 100
    assert out["messages"][1] == {"role": "tool"}
    assert len(out["prompt"]) == 100


def test_demo_config_routes_the_local_model(tmp_path: Path) -> None:
    from distillwarden.config import load_settings

    path = write_demo_config(tmp_path, port=18123, upstream_port=18124)
    settings = load_settings(path)
    assert settings.port == 18123
    assert settings.upstreams[0].base_url == "http://127.0.0.1:18124/v1"
    assert [m.name for m in settings.models] == ["smollm2-135m-instruct"]


@pytest.mark.slow
@pytest.mark.model
def test_demo_suspends_an_attacker_and_exports_a_bundle(tmp_path: Path) -> None:
    result = run_demo(
        tmp_path / "demo", port=free_port(), upstream_port=free_port(),
        console=Console(file=open(tmp_path / "demo.log", "w")),  # noqa: SIM115
    )
    accepted = sum(v for k, v in result.status_counts.items() if k == 200)
    assert result.requests_sent > 100
    assert result.events_logged >= accepted > 0
    assert result.caught >= 1
    assert result.suspended_org is not None
    assert result.suspended_error is not None
    assert result.suspended_error["status"] == 403
    assert result.suspended_error["body"]["error"]["code"] == "account_suspended"
    assert result.bundle_dir is not None
    manifest = json.loads((result.bundle_dir / "manifest.json").read_text())
    assert manifest
    assert (result.bundle_dir / "index.html").exists()
