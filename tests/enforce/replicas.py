"""Start real ``distillwarden serve`` gateway processes on loopback for propagation tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, **settings: Any) -> Path:
    """A YAML config file with JSON-safe values."""
    clean = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}
    path.write_text(yaml.safe_dump(clean))
    return path


class GatewayProcess:
    """One ``distillwarden serve`` replica (its own process, its own port)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from distillwarden.cli import main; main()", "serve",
             "--config", str(config), "--port", str(self.port)],
            stdout=self._fh, stderr=subprocess.STDOUT, env=env,
        )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited ({self.proc.returncode}):\n"
                                   + self.log.read_text()[-3000:])
            try:
                httpx.get(self.url + "/v1/models", timeout=1.0, trust_env=False)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("gateway did not start:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._fh.close()


class InProcessGateway:
    """A gateway app (``create_app``) served by uvicorn from a daemon thread: a replica
    with its own cache and change-feed poller, cheaper to start than a process."""

    def __init__(self, settings: Any) -> None:
        import uvicorn

        from distillwarden.gateway.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings, migrate=False), host="127.0.0.1",
                                port=self.port, lifespan="on", access_log=False,
                                log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("in-process gateway did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
