"""The event log: one Arrow schema, a crash-safe writer, readers, importers and export.

See ``docs/events.md`` for the segment layout and the durability guarantees.

Names are imported from their submodules on first use: the gateway only needs the writer
and the record helpers, and importing the readers and importers would load Arrow, numpy and
DuckDB into every serving process (tens of MB of resident memory it never uses).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._spool import spool_events
    from .importers import (
        ImportFormatError,
        ImportReport,
        export_interchange,
        import_dataset,
        import_interchange,
        read_accounts,
        read_labels,
    )
    from .litellm import import_litellm
    from .reader import (
        ReadReport,
        SegmentError,
        SegmentInfo,
        iter_batches,
        list_segments,
        read_events,
        register_events,
        scan_segments,
        verify_segments,
    )
    from .schema import EVENT_SCHEMA, SCHEMA_VERSION, SchemaError, conform
    from .writer import EventLogError, EventWriter, WriterMetrics, write_segment

_WHERE = {
    "ImportFormatError": "importers",
    "ImportReport": "importers",
    "export_interchange": "importers",
    "import_dataset": "importers",
    "import_interchange": "importers",
    "read_accounts": "importers",
    "read_labels": "importers",
    "import_litellm": "litellm",
    "ReadReport": "reader",
    "SegmentError": "reader",
    "SegmentInfo": "reader",
    "iter_batches": "reader",
    "list_segments": "reader",
    "read_events": "reader",
    "register_events": "reader",
    "scan_segments": "reader",
    "verify_segments": "reader",
    "EVENT_SCHEMA": "schema",
    "SCHEMA_VERSION": "schema",
    "SchemaError": "schema",
    "conform": "schema",
    "EventLogError": "writer",
    "EventWriter": "writer",
    "WriterMetrics": "writer",
    "write_segment": "writer",
    "spool_events": "_spool",
}

__all__ = [
    "EVENT_SCHEMA",
    "SCHEMA_VERSION",
    "EventLogError",
    "EventWriter",
    "ImportFormatError",
    "ImportReport",
    "ReadReport",
    "SchemaError",
    "SegmentError",
    "SegmentInfo",
    "WriterMetrics",
    "conform",
    "export_interchange",
    "import_dataset",
    "import_interchange",
    "import_litellm",
    "iter_batches",
    "list_segments",
    "read_accounts",
    "read_events",
    "read_labels",
    "register_events",
    "scan_segments",
    "spool_events",
    "verify_segments",
    "write_segment",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
