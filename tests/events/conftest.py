"""Helpers for event-log tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

BASE_TS = datetime(2025, 1, 17, 9, 0, tzinfo=UTC)


def make_event(i: int, *, org: str | None = None, **extra: Any) -> dict[str, Any]:
    """A small valid event; ``i`` makes it unique and sets its time (one minute apart)."""
    event: dict[str, Any] = {
        "event_id": f"evt_test_{i:08d}",
        "ts": BASE_TS + timedelta(minutes=i),
        "org_id": org or f"org_{i % 3}",
        "endpoint": "/v1/chat/completions",
        "status": 200,
        "model": "m",
        "prompt_text": f"prompt {i}",
        "prompt_tokens": i,
    }
    event.update(extra)
    return event


@pytest.fixture
def events_dir(tmp_path):  # type: ignore[no-untyped-def]
    return tmp_path / "events"
