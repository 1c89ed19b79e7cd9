"""A throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl in a temporary directory).

Used by the test fixtures and the store benchmarks so that PostgreSQL support is exercised
against a real server. PostgreSQL refuses to run as root, so as root the server runs as
the ``postgres`` (or ``nobody``) user through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from .._net import free_port

__all__ = ["PostgresUnavailable", "TemporaryPostgres", "find_pg_binary"]


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries (or an unprivileged user to run them as root) are missing."""


def find_pg_binary(name: str) -> str | None:
    """``initdb``/``pg_ctl`` from PATH or Debian's ``/usr/lib/postgresql/<v>/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class TemporaryPostgres:
    """Start with :meth:`start` (or ``with``); :attr:`url` is
    ``postgresql://postgres@127.0.0.1:<port>/postgres`` with trust authentication."""

    def __init__(self, *, fast: bool = True) -> None:
        self.fast = fast
        self.url = ""
        self._base: Path | None = None
        self._prefix: list[str] = []
        self._pg_ctl = ""

    def start(self) -> str:
        initdb, pg_ctl = find_pg_binary("initdb"), find_pg_binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise PostgresUnavailable("PostgreSQL binaries (initdb, pg_ctl) not installed")
        base = Path(tempfile.mkdtemp(prefix="dw-pg-"))
        if os.geteuid() == 0:
            user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            runuser = shutil.which("runuser")
            if user is None or runuser is None:
                shutil.rmtree(base, ignore_errors=True)
                raise PostgresUnavailable(
                    "running as root without an unprivileged user (postgres/nobody) or runuser"
                )
            entry = pwd.getpwnam(user)
            os.chown(base, entry.pw_uid, entry.pw_gid)
            self._prefix = [runuser, "-u", user, "--"]
        self._base, self._pg_ctl = base, pg_ctl
        data, log = base / "data", base / "server.log"
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        subprocess.run(
            [
                *self._prefix,
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                *(["--no-sync"] if self.fast else []),
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        port = free_port()
        opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if self.fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        started = subprocess.run(
            [
                *self._prefix,
                pg_ctl,
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            env=env,
        )
        if started.returncode != 0:
            detail = log.read_text() if log.exists() else started.stderr.decode()
            self.stop()
            raise RuntimeError(f"PostgreSQL failed to start:\n{detail}")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        return self.url

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        if self._base is None:
            return
        if self.url:
            subprocess.run(
                [
                    *self._prefix,
                    self._pg_ctl,
                    "-D",
                    str(self._base / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
            )
        shutil.rmtree(self._base, ignore_errors=True)
        self._base, self.url = None, ""

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
