"""Per-request timing columns of the account signals, in one sort and one compiled pass.

For each request, within its account's requests ordered by ``(ts, event_id)``:

* ``gap_us``: microseconds since the account's previous request (null for its first);
* ``in_window``: the account's requests in the ``window_us`` up to and including this
  request's time (requests at the same instant all count, as SQL's ``RANGE`` frame does);
* ``machine``: the request is *rapid* (``gap_us < gap_limit_us``) and belongs to a run of at
  least ``min_run`` rapid requests (a run: the rapid requests that follow one that is not).

These are the window functions the signal query would otherwise evaluate, each with its own
sort of the window's requests; the tests hold this pass to those SQL definitions.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["timing_columns"]


@numba.njit(inline="always")
def _close_run(machine: np.ndarray, gap: np.ndarray, first: int, start: int, stop: int,
               gap_limit_us: int) -> None:
    """Mark the rapid requests of the run ``start .. stop - 1`` (of an account whose first
    request is ``first``) as machine-sent."""
    for q in range(start, stop):
        machine[q] = q > first and gap[q] < gap_limit_us


@numba.njit(nogil=True, cache=True)
def _timing_kernel(
    org: np.ndarray, ts: np.ndarray, window_us: int, gap_limit_us: int, min_run: int,
    gap: np.ndarray, has_gap: np.ndarray, in_window: np.ndarray, machine: np.ndarray,
) -> None:
    n = len(org)
    r = 0
    while r < n:
        # one account's requests: rows r .. end - 1
        end = r
        while end < n and org[end] == org[r]:
            end += 1
        left = r
        run_start = r
        rapid_in_run = 0
        for k in range(r, end):
            if k > r:
                gap[k] = ts[k] - ts[k - 1]
                has_gap[k] = True
            if k > r and gap[k] < gap_limit_us:
                rapid_in_run += 1
            else:
                # a request that is not rapid closes the previous run and starts the next
                if rapid_in_run >= min_run:
                    _close_run(machine, gap, r, run_start, k, gap_limit_us)
                run_start = k
                rapid_in_run = 0
            # the window ending at this request's time, its peers included
            while ts[left] < ts[k] - window_us:
                left += 1
            last = k
            while last + 1 < end and ts[last + 1] == ts[k]:
                last += 1
            in_window[k] = last - left + 1
        if rapid_in_run >= min_run:
            _close_run(machine, gap, r, run_start, end, gap_limit_us)
        r = end


def timing_columns(
    org_id: pa.Array | pa.ChunkedArray, ts: pa.Array | pa.ChunkedArray,
    event_id: pa.Array | pa.ChunkedArray, *, window_us: int, gap_limit_us: int, min_run: int,
) -> dict[str, pa.Array]:
    """``gap_us`` (int64, null for an account's first request), ``in_window`` (int64) and
    ``machine`` (bool) for each request, in the order given (see the module docstring)."""
    n = len(org_id)
    if n == 0:
        return {"gap_us": pa.array([], pa.int64()), "in_window": pa.array([], pa.int64()),
                "machine": pa.array([], pa.bool_())}
    t_us = pc.cast(ts, pa.timestamp("us", tz=ts.type.tz))
    order = pc.sort_indices(
        pa.table({"o": org_id, "t": t_us, "e": event_id}),
        sort_keys=[("o", "ascending"), ("t", "ascending"), ("e", "ascending")],
    ).to_numpy()
    # accounts as integer codes, in sorted order (equal codes: one account's requests)
    sorted_org = pc.take(org_id, order)
    if isinstance(sorted_org, pa.ChunkedArray):
        sorted_org = sorted_org.combine_chunks()
    org_sorted = pc.dictionary_encode(sorted_org).indices.to_numpy(
        zero_copy_only=False).astype(np.int64)
    ts_sorted = pc.take(t_us, order).cast(pa.int64()).to_numpy(zero_copy_only=False)
    gap = np.zeros(n, np.int64)
    has_gap = np.zeros(n, np.bool_)
    in_window = np.zeros(n, np.int64)
    machine = np.zeros(n, np.bool_)
    _timing_kernel(org_sorted, ts_sorted, window_us, gap_limit_us, min_run, gap, has_gap,
                   in_window, machine)
    back = np.empty(n, np.int64)
    back[order] = np.arange(n)
    return {
        "gap_us": pa.array(gap[back], mask=~has_gap[back]),
        "in_window": pa.array(in_window[back]),
        "machine": pa.array(machine[back]),
    }
