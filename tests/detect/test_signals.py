"""Account signals: timing signals that expose a second, scripted traffic source."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from distillwarden.detect.features import request_features
from distillwarden.detect.signals import account_signals

from .conftest import T0, TrafficBuilder


def _signals(builder: TrafficBuilder) -> dict[str, dict[str, float]]:
    sig = account_signals(request_features(builder.events()), builder.accounts_table())
    rows = sig.to_pylist()
    return {str(r["org_id"]): r for r in rows}


def test_pacing_mix_sees_a_scripted_burst_inside_human_traffic(
    benign_prompts: list[str],
) -> None:
    b = TrafficBuilder(seed=3)
    b.account("human", benign_prompts, n=190, mean_gap_s=900.0)
    b.account("pipeline", benign_prompts, n=200, mean_gap_s=2.0, regular=True)
    # the same human product, with 20 requests sent by a script 2 s apart, a day later
    b.account("mixed", benign_prompts, n=190, mean_gap_s=900.0)
    b.account("mixed", benign_prompts, n=20, mean_gap_s=2.0, regular=True,
              start=T0 + timedelta(days=3))
    s = _signals(b)
    assert s["human"]["pacing_mix"] < 0.02
    assert s["pipeline"]["pacing_mix"] < 0.02  # all machine-paced: one mode, not a mix
    assert 0.05 < s["mixed"]["pacing_mix"] < 0.12
    # the burst is also the account's peak rate
    assert s["mixed"]["peak_rate"] > np.log10(15)
    assert s["human"]["peak_rate"] < np.log10(6)


def test_placeholder_density_needs_volume_to_be_extreme() -> None:
    # the same text, full of placeholders: 4 requests of it are weaker evidence than 200
    text = "Dear [NAME], your order [ID] ships to [ADDRESS] on [DATE]; call [PHONE]."
    b = TrafficBuilder(seed=4)
    b.account("few", [text], n=4)
    b.account("many", [text], n=200)
    s = _signals(b)
    assert s["few"]["placeholder_density"] < 0.5 * s["many"]["placeholder_density"]
    assert s["many"]["placeholder_density"] > 0.25  # the prior barely moves a large sample
