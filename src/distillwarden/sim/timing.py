"""When simulated requests arrive: diurnal human sessions and scripted machine runs.

Human traffic comes in sessions whose start times follow a 24-hour rate curve in the
account's local time zone (with quieter weekends); turns inside a session are seconds to
minutes apart. Scripted traffic (pipelines, harvesters) comes in runs of near-regular
requests; runs of a hydra cluster can share start times so that its members move together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CURVES", "Arrivals", "TimingModel", "sample_arrivals"]

_US = 1_000_000

#: Relative request rates per local hour (0..23).
CURVES: dict[str, np.ndarray] = {
    # office work: peak mid-morning and mid-afternoon, little at night
    "office": np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 3, 6, 9, 10, 9.5, 7, 8.5, 9.5, 9,
                        7.5, 5, 3.5, 3, 2.8, 2.5, 2, 1.4]),
    # consumers: evenings heavier
    "consumer": np.array([2.5, 1.5, 0.8, 0.5, 0.4, 0.5, 1, 2, 3.5, 4.5, 5, 5.5, 6, 5.5, 5.5,
                          5.5, 6, 6.5, 7.5, 8.5, 9, 8, 6, 4]),
    # students: afternoons and late evenings
    "student": np.array([3, 2, 1, 0.5, 0.3, 0.3, 0.6, 1.5, 3, 4, 4.5, 4.5, 4, 5, 6, 6.5, 6.5,
                         6, 6, 7, 8, 8.5, 7, 5]),
    # machines: flat with a small business-hours bump
    "flat": np.array([5, 5, 5, 5, 5, 5, 5, 5.5, 6, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5,
                      6, 5.5, 5, 5, 5, 5, 5]),
    # nightly batch jobs
    "batch": np.array([8, 9, 9, 8, 6, 3, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
                       0.5, 0.5, 0.5, 1, 2, 4, 6]),
}


@dataclass(frozen=True)
class TimingModel:
    """How one persona's requests are spread in time.

    ``mode`` is ``session`` (human: turns ``gap_s`` apart on average, ``turns`` per session)
    or ``scripted`` (runs of ``turns`` requests every ``gap_s`` seconds with ``jitter``).
    """

    mode: str = "session"
    curve: str = "office"
    weekend_factor: float = 0.4
    turns: float = 1.5
    gap_s: float = 90.0
    jitter: float = 0.6


@dataclass
class Arrivals:
    """Event times (epoch µs, sorted) with the session and turn index of each."""

    ts_us: np.ndarray
    session: np.ndarray
    turn: np.ndarray


def _start_times(
    rng: np.random.Generator,
    k: int,
    start_us: int,
    days: float,
    tz_hours: float,
    model: TimingModel,
) -> np.ndarray:
    """``k`` session/run start times following the hourly curve in local time."""
    n_days = max(1, int(np.ceil(days)))
    curve = CURVES[model.curve]
    hour_of_day = np.arange(24 * n_days) % 24
    # local hour = UTC hour + tz; a UTC slot h has local hour (h + tz) % 24
    local = (hour_of_day + int(round(tz_hours))) % 24
    weights = curve[local].astype(np.float64)
    start_day = (start_us // (86_400 * _US) + 3) % 7  # 1970-01-01 was a Thursday (3)
    weekday = (start_day + np.arange(24 * n_days) // 24) % 7
    local_weekday = weekday  # a day boundary shift of the weekend is immaterial here
    weights = np.where(local_weekday >= 5, weights * model.weekend_factor, weights)
    limit_h = int(days * 24)
    weights[limit_h:] = 0.0
    weights /= weights.sum()
    slots = rng.choice(weights.size, size=k, p=weights)
    offset = rng.random(k) * 3600.0
    return start_us + ((slots * 3600.0 + offset) * _US).astype(np.int64)


def sample_arrivals(
    rng: np.random.Generator,
    n: int,
    *,
    start_us: int,
    days: float,
    tz_hours: float,
    model: TimingModel,
    shared_starts: np.ndarray | None = None,
) -> Arrivals:
    """``n`` arrival times over ``days`` from ``start_us``, grouped in sessions or runs.

    ``shared_starts`` (epoch µs) makes runs begin near these times (hydra members acting on a
    common schedule) instead of drawing starts from the curve.
    """
    if n <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return Arrivals(empty, empty.astype(np.int32), empty.astype(np.int32))
    mean_turns = max(1.0, model.turns)
    lengths: list[int] = []
    total = 0
    p = 1.0 / mean_turns
    while total < n:
        batch = rng.geometric(p, size=max(8, int((n - total) / mean_turns) + 8))
        for length in batch:
            take = int(min(length, n - total))
            lengths.append(take)
            total += take
            if total >= n:
                break
    k = len(lengths)
    if shared_starts is not None and shared_starts.size:
        picks = shared_starts[rng.integers(0, shared_starts.size, size=k)]
        starts = picks + (rng.normal(0.0, 120.0, size=k) * _US).astype(np.int64)
    else:
        starts = _start_times(rng, k, start_us, days, tz_hours, model)
    len_arr = np.asarray(lengths, dtype=np.int64)
    session = np.repeat(np.arange(k, dtype=np.int32), len_arr)
    first = np.concatenate([[0], np.cumsum(len_arr)[:-1]])
    turn = (np.arange(n, dtype=np.int64) - np.repeat(first, len_arr)).astype(np.int32)
    if model.mode == "scripted":
        gaps = model.gap_s * np.clip(1.0 + model.jitter * rng.standard_normal(n), 0.05, None)
    else:
        gaps = rng.lognormal(np.log(model.gap_s), 0.8, size=n)
    gaps = np.where(turn == 0, 0.0, gaps)
    # cumulative gap within each session
    cum = np.cumsum(gaps)
    session_base = np.repeat(cum[first], len_arr)
    within = cum - session_base
    ts = np.repeat(starts, len_arr) + (within * _US).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    return Arrivals(ts[order], session[order], turn[order])
