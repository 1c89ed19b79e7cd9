"""Account signals: timing signals that expose a second, scripted traffic source; the
breadth of benchmark sets an account draws from."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from distillwarden.detect.features import BenchmarkIndex, request_features
from distillwarden.detect.findings import build_findings
from distillwarden.detect.scoring import AccountScores
from distillwarden.detect.signals import BREADTH_MIN_HITS, account_signals, signal_matrix

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


def test_bench_breadth_counts_benchmark_sets_with_enough_matches() -> None:
    """Breadth: the sets with at least BREADTH_MIN_HITS matched requests (a stray match is
    not a set), and 0 under an evaluation licence, whose use it is."""
    sets = {
        "zoo": "the quick brown fox jumps over the lazy dog near the quiet river bank today",
        "kitchen": "seven hungry cats chase three fast mice across the long wooden kitchen",
        "garage": "an old red truck waits beside the broken gate under heavy grey rain",
    }
    idx = BenchmarkIndex.build(list(sets.values()), sets=list(sets))
    b = TrafficBuilder(seed=5)
    for org, licence in (("battery", "standard"), ("lab", "evaluation-permitted")):
        b.account(org, [sets["zoo"]], n=BREADTH_MIN_HITS, licence=licence)
        b.account(org, [sets["kitchen"]], n=BREADTH_MIN_HITS + 2, licence=licence)
        b.account(org, [sets["garage"]], n=BREADTH_MIN_HITS - 1, licence=licence)
    b.account("focused", [sets["zoo"]], n=20)
    sig = account_signals(request_features(b.events(), index=idx), b.accounts_table())
    s = {str(r["org_id"]): r for r in sig.to_pylist()}
    assert s["battery"]["bench_breadth"] == 2
    assert s["focused"]["bench_breadth"] == 1
    assert s["lab"]["bench_breadth"] == 0


def test_findings_name_the_benchmark_sets_of_the_breadth_signal() -> None:
    """A finding that names a benchmark signal lists the sets the account drew on (each with
    at least BREADTH_MIN_HITS matches), by name."""
    items = {"zoo": "the quick brown fox jumps over the lazy dog near the quiet river bank",
             "kitchen": "seven hungry cats chase three fast mice across the long wooden floor"}
    idx = BenchmarkIndex.build(list(items.values()), sets=list(items))
    b = TrafficBuilder(seed=6)
    for text in items.values():
        b.account("battery", [text], n=BREADTH_MIN_HITS)
    sig = account_signals(request_features(b.events(), index=idx), b.accounts_table())
    names = ("share_bench", "bench_breadth", "volume")
    p = np.array([[1e-4, 1e-3, 0.5]])
    scores = AccountScores(
        signals=sig, statistics=signal_matrix(sig, names), pvalues=p, p_account=p[:, 0],
        p_final=p[:, 0], risk=np.array([4.0]), cluster_of={}, clusters=[],
        signal_names=names, benchmark_sets=idx.set_names,
    )
    (f,) = build_findings(scores, threshold=3.0, fpr=0.001, detector="t", window_start=None,
                          window_end=None)
    assert f.signals["bench_breadth"]["value"] == 2
    for name in ("share_bench", "bench_breadth"):
        assert f.signals[name]["benchmark_sets"] == ["kitchen", "zoo"]
        assert f.signals[name]["requests"] == 2 * BREADTH_MIN_HITS
    assert "volume" not in f.signals
