"""Structured JSON logs: one line per event of interest, none per request by default."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging", "log_event"]


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; a message that already is JSON is merged in."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        msg = record.getMessage()
        if msg.startswith("{"):
            try:
                parsed = orjson.loads(msg)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                out.update(parsed)
            else:
                out["message"] = msg
        else:
            out["message"] = msg
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def configure_logging(level: str = "info") -> None:
    """Send distillwarden's and uvicorn's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("distillwarden", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(level.upper())


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event (``{"event": ..., **fields}``)."""
    if logger.isEnabledFor(level):
        logger.log(level, orjson.dumps({"event": event, **fields}, default=str).decode())
