"""DistillationDetector: estimator API, calibration on benign traffic, licence awareness."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from distillwarden.detect.scoring import DistillationDetector, NotFittedError

from .conftest import TrafficBuilder, attack_prompts, hash_embedder


@pytest.fixture(scope="module")
def fitted(benign_prompts: list[str]) -> DistillationDetector:
    ref = TrafficBuilder(11)
    pool = benign_prompts[::2]
    for i in range(100):
        ref.account(f"ref{i}", pool, n=int(15 + ref.rng.integers(80)))
    return DistillationDetector(embedder=hash_embedder).fit(ref.events(), ref.accounts_table())


def _test_traffic(benign: list[str]) -> tuple[pa.Table, pa.Table]:
    # fresh benign accounts from the reference's prompt distribution (calibration is a claim
    # about traffic like the reference); attackers fill templates from the other half
    t = TrafficBuilder(12)
    for i in range(50):
        t.account(f"ben{i}", benign[::2], n=int(15 + t.rng.integers(80)))
    pool = benign[1::2]
    for kind in ("cot", "dataset", "judge"):
        t.account(f"att_{kind}", attack_prompts(kind, pool), n=80)
    # a licensed evaluation lab sending benchmark-judging traffic
    t.account("evallab", attack_prompts("judge", pool), n=80, licence="evaluation-permitted")
    return t.events(), t.accounts_table()


def test_attackers_above_benign_at_calibrated_threshold(
    fitted: DistillationDetector, benign_prompts: list[str]
) -> None:
    events, accounts = _test_traffic(benign_prompts)
    scores = fitted.decision_function(events, accounts)
    th = fitted.threshold_for_fpr(0.01)
    benign = [v for k, v in scores.items() if k.startswith("ben")]
    assert np.mean(np.array(benign) > th) <= 0.05
    for kind in ("cot", "dataset", "judge"):
        assert scores[f"att_{kind}"] > th, kind
    assert scores["att_judge"] > max(benign)


def test_evaluation_licence_excuses_judging(
    fitted: DistillationDetector, benign_prompts: list[str]
) -> None:
    events, accounts = _test_traffic(benign_prompts)
    s = fitted.score_accounts(events, accounts)
    orgs = s.org_ids
    j = s.signal_names.index("share_judge")
    assert s.statistics[orgs.index("evallab"), j] == 0.0
    assert s.statistics[orgs.index("att_judge"), j] > 10.0


#: how an evaluation harness asks: log-probabilities of the choices, several samples per item
_HARNESS = {"logprobs": True, "top_logprobs": 5, "n": 4}


def _scripted_runs(builder: TrafficBuilder, benign: list[str], licence: str, n: int) -> None:
    """Labs running one benchmark template, fast and regular."""
    template = ["Question: " + q[:200] + "\nAnswer with the letter only." for q in benign[:40]]
    for i in range(n):
        builder.account(f"lab{i}", template, n=300, mean_gap_s=2.0, regular=True,
                        licence=licence, extra=_HARNESS)


def test_an_evaluation_licence_permits_scripted_runs_and_changes_only_its_holders(
    benign_prompts: list[str],
) -> None:
    """Under an evaluation licence, how a harness runs (rate, regular timing, one template,
    logprobs, several samples) is no evidence (undefined, like a signal without enough
    requests: not p = 1, which would count against the other signals); under a standard
    licence the same traffic is. The permission changes its holders' scores only: a detector
    whose reference labs hold an evaluation licence scores every other account exactly as one
    whose labs do not."""
    from distillwarden.detect.signals import EVAL_RUN_SIGNALS

    detectors = {}
    for licence, labs in (("evaluation-permitted", 4), ("standard", 4), ("none", 0)):
        ref = TrafficBuilder(21)
        for i in range(60):
            ref.account(f"ref{i}", benign_prompts[::2], n=int(15 + ref.rng.integers(80)))
        _scripted_runs(ref, benign_prompts, licence, labs)
        detectors[licence] = DistillationDetector(link=False, use_embeddings=False).fit(
            ref.events(), ref.accounts_table())
    t = TrafficBuilder(22)
    for i in range(20):
        t.account(f"ben{i}", benign_prompts[1::2], n=int(15 + t.rng.integers(80)))
    t.account("rival", attack_prompts("cot", benign_prompts[1::2]), n=120, mean_gap_s=3.0,
              regular=True)
    t.account("lab", ["Question: " + q[:200] + "\nAnswer with the letter only."
                      for q in benign_prompts[1::2][:40]], n=300, mean_gap_s=2.0,
              regular=True, licence="evaluation-permitted", extra=_HARNESS)
    t.account("copy", ["Question: " + q[:200] + "\nAnswer with the letter only."
                       for q in benign_prompts[1::2][:40]], n=300, mean_gap_s=2.0,
              regular=True, extra=_HARNESS)
    events, accounts = t.events(), t.accounts_table()
    permitted = detectors["evaluation-permitted"].score_accounts(events, accounts)
    plain = detectors["standard"].score_accounts(events, accounts)
    names = permitted.signal_names
    lab, copy = permitted.org_ids.index("lab"), permitted.org_ids.index("copy")
    for j, name in enumerate(names):
        if name in EVAL_RUN_SIGNALS:
            assert np.isnan(permitted.pvalues[lab, j]), name
        else:
            assert np.isfinite(permitted.pvalues[lab, j]) or name.startswith("emb"), name
    run = [j for j, name in enumerate(names) if name in EVAL_RUN_SIGNALS]
    assert permitted.pvalues[copy, run].min() < 0.05
    # against a reference of ordinary accounts, the permitted lab is far less suspicious
    # than the same traffic without the licence
    alone = detectors["none"].score_accounts(events, accounts)
    assert alone.risk[lab] < alone.risk[copy] - 1.0
    others = [i for i, o in enumerate(permitted.org_ids) if o != "lab"]
    assert plain.org_ids == permitted.org_ids
    np.testing.assert_allclose(plain.risk[others], permitted.risk[others], rtol=1e-12)


def test_thresholds_are_monotone_in_fpr(fitted: DistillationDetector) -> None:
    t = [fitted.threshold_for_fpr(f) for f in (0.2, 0.05, 0.01, 0.001, 0.0001)]
    assert all(a <= b for a, b in zip(t, t[1:], strict=False))
    with pytest.raises(ValueError):
        fitted.threshold_for_fpr(0.0)


def test_not_fitted_and_bad_parameters(benign_prompts: list[str]) -> None:
    t = TrafficBuilder()
    t.account("a", benign_prompts, n=3)
    with pytest.raises(NotFittedError, match="fit"):
        DistillationDetector().decision_function(t.events())
    with pytest.raises(ValueError, match="known signals"):
        DistillationDetector(signals=["nope"], embedder=hash_embedder).fit(t.events())
    with pytest.raises(ValueError, match="at least 10"):
        DistillationDetector(embedder=hash_embedder).fit(t.events())
    with pytest.raises(ValueError, match="kNN metric"):
        DistillationDetector(knn_metric="cosine", embedder=hash_embedder).fit(t.events())
    for low in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="knn_low"):
            DistillationDetector(knn_low=low, embedder=hash_embedder).fit(t.events())


def test_clusters_api_returns_every_account(
    fitted: DistillationDetector, benign_prompts: list[str]
) -> None:
    events, accounts = _test_traffic(benign_prompts)
    cl = fitted.clusters(events, accounts)
    assert set(cl) == set(fitted.decision_function(events, accounts))
    assert all(v is None for k, v in cl.items() if k.startswith("ben"))


def test_cluster_lift_needs_own_evidence_unless_the_cluster_is_all_suspicious() -> None:
    import numpy as np

    from distillwarden.detect.scoring import lift_mask

    # one operator's accounts, each mildly suspicious (a reseller never seen on benign)
    hydra = np.full(20, 0.03)
    assert lift_mask(hydra, 0.01, 0.05, 0.9).all()
    # a wrongly linked cluster: mostly attackers, a few ordinary accounts at p 0.03
    mixed = np.r_[np.full(12, 1e-6), np.full(4, 0.03), np.full(4, 0.6)]
    lifted = lift_mask(mixed, 0.01, 0.05, 0.9)
    assert lifted[:12].all() and not lifted[12:].any()
    # two accounts, an attacker and an ordinary one at p 0.03: not a quorum of an operator
    pair = np.array([1e-6, 0.03])
    assert lift_mask(pair, 0.01, 0.05, 0.9).tolist() == [True, False]
    assert lift_mask(np.full(5, 0.03), 0.01, 0.05, 0.9).all()


def test_a_lift_is_worth_no_more_than_the_link_that_carries_it() -> None:
    """A member held by one edge of weight w in a cluster of n may be there by coincidence,
    with chance about n * 10**-w; its lifted p-value is floored there. Members held by more
    than one edge are not floored."""
    from distillwarden.detect.linkage import HydraCluster
    from distillwarden.detect.scoring import link_coincidence

    members = tuple(f"m{i}" for i in range(100))
    c = HydraCluster("hyd", members, {"edge_threshold": 5.0}, 5.0, single_edge={"m7": 5.3})
    floor = link_coincidence(c, ["m1", "m7"])
    assert floor[0] == 0.0
    assert floor[1] == pytest.approx(100 * 10**-5.3)
    # a weak single edge in a big cluster is no evidence at all
    big = HydraCluster("hyd", members * 30, {}, 1.0, single_edge={"m7": 1.0})
    assert link_coincidence(big, ["m7"])[0] == 1.0


def test_scoring_floors_the_lift_of_a_member_held_by_one_edge(
    fitted: DistillationDetector, benign_prompts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In scoring, a member suspicious on its own (p 0.004) but held by one edge whose
    coincidence chance is 0.001 is lifted to 0.001, not to the cluster's 1e-9; a member
    held by more edges is lifted all the way."""
    from distillwarden.detect.linkage import HydraCluster

    t = TrafficBuilder(14)
    for i in range(6):
        t.account(f"h{i}", benign_prompts[::2], n=30)
    events, accounts = t.events(), t.accounts_table()
    orgs = sorted(f"h{i}" for i in range(6))
    own = {o: 1e-9 for o in orgs} | {"h4": 0.004, "h5": 0.004}
    monkeypatch.setattr(fitted, "_combine", lambda p: np.array([own[o] for o in orgs]))
    cluster = HydraCluster("hyd_t", tuple(orgs), {"edge_threshold": 5.0}, 5.0,
                           single_edge={"h4": -np.log10(0.001 / 6)})
    monkeypatch.setattr(fitted.linker_, "link", lambda *a, **k: [cluster])
    s = fitted.score_accounts(events, accounts)
    final = dict(zip(s.org_ids, s.p_final, strict=True))
    assert final["h4"] == pytest.approx(0.001)
    assert final["h5"] < 1e-6


def test_pooled_cluster_traffic_adds_up_what_members_show_a_little_each(
    fitted: DistillationDetector, benign_prompts: list[str]
) -> None:
    from distillwarden.detect.features import request_features
    from distillwarden.detect.linkage import HydraCluster

    # 40 accounts of one operator, each slipping 2 judge prompts into 60 ordinary ones: weak
    # evidence alone, 80 of 2,480 requests together (about 1% of the benign prompts read as
    # judging too: Arena-Hard holds a few); 40 benign accounts pooled the same way stay
    # ordinary
    t = TrafficBuilder(13)
    judge = attack_prompts("judge", benign_prompts[1::2])
    for i in range(40):
        t.account(f"op{i}", benign_prompts[::2], n=60)
        t.account(f"opj{i}", judge, n=2)
        t.account(f"ben{i}", benign_prompts[::2], n=60)
    feats = request_features(t.events())
    org = [("op" + o[3:]) if o.startswith("opj") else o
           for o in feats.column("org_id").to_pylist()]
    feats = feats.set_column(feats.schema.get_field_index("org_id"), "org_id",
                             pa.array(org, pa.string()))
    members = lambda prefix: tuple(f"{prefix}{i}" for i in range(40))  # noqa: E731
    clusters = [HydraCluster("hyd_op", members("op"), {}, 0.0),
                HydraCluster("hyd_ben", members("ben"), {}, 0.0)]
    pooled = fitted._pooled_cluster_p(feats, clusters)
    s = fitted.score_accounts(t.events(), t.accounts_table(), features=feats)
    own = s.p_account[[s.org_ids.index(f"op{i}") for i in range(40)]]
    assert pooled["hyd_op"] < own.min() / 100  # far stronger than any member alone
    assert pooled["hyd_ben"] > 0.01


def test_count_statistics_do_not_extrapolate_beyond_the_busiest_reference_account(
    fitted: DistillationDetector,
) -> None:
    cap = fitted.n_cap_
    assert 15 <= cap <= 95  # the fixture's reference accounts send 15 to 94 requests
    sig = pa.table({"org_id": ["at_cap", "ten_times"], "n_requests": [cap, 10 * cap],
                    "share_judge": [0.2, 0.2]})
    j = fitted.signal_names_.index("share_judge")
    capped = fitted._statistics(sig, fitted.signal_names_)[:, j]
    assert capped[0] > 0 and capped[0] == capped[1]
    raw = fitted._statistics(sig, fitted.signal_names_, cap_volume=False)[:, j]
    assert raw[1] == pytest.approx(10 * raw[0])


def test_detectors_pickled_before_a_parameter_existed_get_its_default() -> None:
    import pickle

    det = DistillationDetector(use_embeddings=False, lift_quorum=0.8)
    state = det.__getstate__()
    del state["lift_quorum_min"], state["pool_min_members"]
    old = DistillationDetector.__new__(DistillationDetector)
    old.__setstate__(state)
    assert old.lift_quorum_min == 5 and old.pool_min_members == 10
    assert old.lift_quorum == 0.8  # what was pickled wins over the defaults
    again = pickle.loads(pickle.dumps(det))
    assert again.lift_quorum == 0.8 and again.pool_min_members == 10
    # a detector fitted before the kNN space could have a low side scores as it was fitted
    det = DistillationDetector(use_embeddings=False)
    state = det.__getstate__()
    del state["knn_low"]
    older = DistillationDetector.__new__(DistillationDetector)
    older.__setstate__(state)
    assert older.knn_low == 0.0


def test_optional_signals_are_scored_only_when_asked_for(fitted: DistillationDetector) -> None:
    """Benchmark breadth is computed but not scored by default; naming it scores it."""
    from distillwarden.detect.scoring import ALL_SIGNALS, DEFAULT_SIGNALS

    assert "bench_breadth" in ALL_SIGNALS and "bench_breadth" not in DEFAULT_SIGNALS
    assert "bench_breadth" not in fitted.signal_names_
    assert "bench_breadth" in DistillationDetector(
        signals=[*DEFAULT_SIGNALS, "bench_breadth"], use_embeddings=False)._signal_names()
