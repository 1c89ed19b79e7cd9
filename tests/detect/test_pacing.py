"""The compiled timing pass equals the SQL window functions it replaces."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwarden.detect.pacing import timing_columns

_WINDOW_S = 7
_GAP_S = 2
_RUN = 3

#: the definitions: SQL window functions over each account's requests
_SQL = f"""
WITH f AS (
    SELECT *, epoch_us(ts) - lag(epoch_us(ts)) OVER (PARTITION BY org_id ORDER BY ts,
               event_id) AS gap_us,
           count(*) OVER (PARTITION BY org_id ORDER BY ts RANGE BETWEEN
               INTERVAL {_WINDOW_S} SECONDS PRECEDING AND CURRENT ROW) AS in_window
    FROM x
),
fg AS (SELECT *, coalesce(gap_us < {_GAP_S * 1_000_000}, false) AS rapid FROM f),
fr AS (
    SELECT *, sum(CAST(NOT rapid AS INTEGER)) OVER (PARTITION BY org_id ORDER BY ts, event_id)
               AS run_id
    FROM fg
)
SELECT i, gap_us, in_window,
       rapid AND count(*) FILTER (WHERE rapid) OVER (PARTITION BY org_id, run_id) >= {_RUN}
           AS machine
FROM fr ORDER BY i
"""

_ROWS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 40),
              st.sampled_from(["e1", "e2", "e3", "e4", "e5"])),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(rows=_ROWS)
def test_timing_columns_equal_the_sql_window_definitions(
    rows: list[tuple[str, int, str]],
) -> None:
    """Gaps, requests in the trailing window (same-instant requests included) and
    machine-paced runs equal the SQL definitions, for any order of the input rows, with
    ties in time broken by event id."""
    base = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    table = pa.table({
        "i": pa.array(range(len(rows)), pa.int64()),
        "org_id": pa.array([r[0] for r in rows], pa.string()),
        "ts": pa.array([int((base + r[1]) * 1e6) for r in rows], pa.timestamp("us", tz="UTC")),
        # event ids unique per row, as in the log; the prefix makes ties in time common
        "event_id": pa.array([f"{r[2]}-{k:03d}" for k, r in enumerate(rows)], pa.string()),
    })
    got = timing_columns(table.column("org_id"), table.column("ts"), table.column("event_id"),
                         window_us=_WINDOW_S * 1_000_000, gap_limit_us=_GAP_S * 1_000_000,
                         min_run=_RUN)
    con = duckdb.connect()
    con.register("x", table)
    want = con.sql(_SQL).to_arrow_table()
    con.close()
    for name in ("gap_us", "in_window", "machine"):
        assert got[name].to_pylist() == want.column(name).to_pylist(), name


def test_no_requests_give_empty_columns() -> None:
    empty = pa.array([], pa.string())
    got = timing_columns(empty, pa.array([], pa.timestamp("us", tz="UTC")), empty,
                         window_us=1, gap_limit_us=1, min_run=1)
    assert all(len(v) == 0 for v in got.values())
