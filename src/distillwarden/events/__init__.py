"""The event log: one Arrow schema, a crash-safe writer, readers, importers and export.

See ``docs/events.md`` for the segment layout and the durability guarantees.
"""

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
    "verify_segments",
    "write_segment",
]
