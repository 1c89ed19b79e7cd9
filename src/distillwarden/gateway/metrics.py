"""Prometheus metrics kept as plain counters and rendered as text on scrape.

The hot path only increments integers in dictionaries (one event loop thread, no locks);
formatting happens when ``/metrics`` is read.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

__all__ = ["LATENCY_BUCKETS", "GatewayMetrics"]

#: Upper bounds (seconds) of the request latency histogram.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class GatewayMetrics:
    """Request counts and latency histograms by route, model and status; rejections by
    reason; gauges read at scrape time (event-log queue depth and lag, cache size)."""

    def __init__(self) -> None:
        # (route, model, status) -> [count, latency sum, bucket counts...]
        self._requests: dict[tuple[str, str, int], list[float]] = {}
        self._rejections: dict[str, int] = {}
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe(self, route: str, model: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (route, model, status)
        row = self._requests.get(key)
        if row is None:
            row = [0.0] * (2 + len(LATENCY_BUCKETS) + 1)
            self._requests[key] = row
        row[0] += 1
        row[1] += seconds
        row[2 + bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def reject(self, reason: str) -> None:
        """Count one rejected request by error code (``invalid_api_key``, ``rate_limited``…)."""
        self._rejections[reason] = self._rejections.get(reason, 0) + 1

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Register a gauge whose value is read at scrape time."""
        self._gauges[name] = (help_text, read)

    def render(self) -> bytes:
        """Prometheus text exposition format 0.0.4."""
        lines = [
            "# HELP distillwarden_requests_total Requests answered, by route, model and status.",
            "# TYPE distillwarden_requests_total counter",
        ]
        for (route, model, status), row in sorted(self._requests.items()):
            lines.append(
                f'distillwarden_requests_total{{route="{_esc(route)}",model="{_esc(model)}",'
                f'status="{status}"}} {int(row[0])}'
            )
        lines += [
            "# HELP distillwarden_request_duration_seconds Time to the last byte of the answer.",
            "# TYPE distillwarden_request_duration_seconds histogram",
        ]
        for (route, model, status), row in sorted(self._requests.items()):
            labels = f'route="{_esc(route)}",model="{_esc(model)}",status="{status}"'
            cumulative = 0
            for i, bound in enumerate(LATENCY_BUCKETS):
                cumulative += int(row[2 + i])
                lines.append(
                    f'distillwarden_request_duration_seconds_bucket{{{labels},le="{bound}"}} '
                    f"{cumulative}"
                )
            lines.append(
                f'distillwarden_request_duration_seconds_bucket{{{labels},le="+Inf"}} {int(row[0])}'
            )
            lines.append(f"distillwarden_request_duration_seconds_sum{{{labels}}} {row[1]:.6f}")
            lines.append(f"distillwarden_request_duration_seconds_count{{{labels}}} {int(row[0])}")
        lines += [
            "# HELP distillwarden_rejections_total Requests refused, by reason (error code).",
            "# TYPE distillwarden_rejections_total counter",
        ]
        for reason, count in sorted(self._rejections.items()):
            lines.append(f'distillwarden_rejections_total{{reason="{_esc(reason)}"}} {count}')
        for name, (help_text, read) in sorted(self._gauges.items()):
            try:
                value = float(read())
            except Exception:
                value = float("nan")
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
        return ("\n".join(lines) + "\n").encode()
