"""A labelled dataset directory: events, accounts and ground truth, as detection reads it.

Layout: ``<dir>/events/`` (Parquet segments), ``<dir>/accounts.parquet``,
``<dir>/labels.jsonl``, optional ``<dir>/scenario.yaml``. Written by the simulator and by
``distillwarden import`` of an interchange log with its labels file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from ..events.importers import ACCOUNTS_SCHEMA, read_accounts
from ..events.reader import list_segments, read_events

__all__ = ["Dataset", "DatasetError"]


class DatasetError(ValueError):
    """A directory is not a complete dataset; the message says what is missing."""


@dataclass(frozen=True)
class Dataset:
    """Read access to a dataset directory."""

    path: Path

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Dataset:
        """Open ``directory``; :class:`DatasetError` says what is missing."""
        path = Path(directory)
        if not path.is_dir():
            raise DatasetError(f"{path} is not a directory; create one with "
                               "`distillwarden simulate --scenario smoke --out DIR`")
        if not (path / "events").is_dir() or not list_segments(path / "events"):
            raise DatasetError(f"{path}/events/ has no event segments; is this a dataset "
                               "directory written by `distillwarden simulate` or `import`?")
        if not (path / "labels.jsonl").exists():
            raise DatasetError(f"{path}/labels.jsonl is missing: evaluation needs ground truth "
                               "(import the traffic with its labels file)")
        return cls(path)

    @property
    def events_dir(self) -> Path:
        """The event log directory."""
        return self.path / "events"

    def events(self, columns: Sequence[str] | None = None) -> pa.Table:
        """All events (optionally only ``columns``), in segment order."""
        return read_events(self.events_dir, columns=columns)

    def accounts(self) -> pa.Table:
        """The accounts table; organizations without one get an empty table."""
        p = self.path / "accounts.parquet"
        if not p.exists():
            return ACCOUNTS_SCHEMA.empty_table()
        return read_accounts(p)

    def labels(self) -> dict[str, dict[str, Any]]:
        """Ground truth by org id (``label``, ``strategy``, ``cluster``, ``persona``,
        ``attacker_fraction`` and, for simulated data, ``split``)."""
        out: dict[str, dict[str, Any]] = {}
        with open(self.path / "labels.jsonl", "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise DatasetError(f"{self.path}/labels.jsonl line {lineno}: {exc}") from exc
                if not isinstance(rec, dict) or "org" not in rec or rec.get("label") not in (
                    "benign", "attacker"
                ):
                    raise DatasetError(f"{self.path}/labels.jsonl line {lineno}: needs 'org' and "
                                       "'label' ('benign' or 'attacker')")
                out[str(rec["org"])] = rec
        return out

    def cache_dir(self) -> Path:
        """Where evaluators keep derived data (embeddings) for this dataset."""
        d = self.path / ".cache"
        d.mkdir(exist_ok=True)
        return d
