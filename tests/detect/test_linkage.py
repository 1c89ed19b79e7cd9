"""Hydra linkage: shared infrastructure and templates link accounts; benign stay apart."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from distillwarden.detect.features import request_features
from distillwarden.detect.linkage import HydraLinker

from .conftest import TrafficBuilder, attack_prompts


def _reference(benign: list[str]) -> TrafficBuilder:
    b = TrafficBuilder(3)
    for i in range(80):
        # a few benign accounts share a popular user agent and a corporate network
        b.account(f"ref{i}", benign, n=15, ua="ua_python" if i % 3 == 0 else None,
                  ip_net="net_corp" if i in (1, 2) else None)
    return b


def test_hydras_recovered_and_benign_unlinked(benign_prompts: list[str]) -> None:
    ref = _reference(benign_prompts)
    linker = HydraLinker().fit(request_features(ref.events()), ref.accounts_table())
    assert linker.weights_["ua"] < linker.weights_["pay"]  # popular UA is weak evidence

    t = TrafficBuilder(4)
    truth: dict[str, str | None] = {}
    for i in range(40):
        t.account(f"ben{i}", benign_prompts, n=15, ua="ua_python" if i % 2 else None)
        truth[f"ben{i}"] = None
    ds = attack_prompts("dataset", benign_prompts)
    for h, size in (("A", 12), ("B", 30)):
        for j in range(size):
            # each hydra member rotates through a few networks of its operator
            t.account(f"hyd{h}{j}", ds, n=8, ip_net=f"net_{h}{j % 3}", ua=f"ua_{h}",
                      payment=f"pay_{h}{j % 2}")
            truth[f"hyd{h}{j}"] = h
    clusters = linker.link(request_features(t.events()), t.accounts_table())
    got = {m: c.cluster_id for c in clusters for m in c.members}
    orgs = sorted(truth)
    labels_true = [truth[o] or o for o in orgs]
    labels_pred = [got.get(o, o) for o in orgs]
    assert adjusted_rand_score(labels_true, labels_pred) >= 0.95
    big = max(clusters, key=lambda c: len(c.members))
    assert len(big.members) == 30
    assert {"net", "ua", "pay"} <= set(big.evidence["shared"])


def test_unfitted_linker_uses_priors_and_single_account_gives_nothing(
    benign_prompts: list[str],
) -> None:
    t = TrafficBuilder()
    t.account("only", benign_prompts, n=5)
    assert HydraLinker().link(request_features(t.events()), t.accounts_table()) == []


@pytest.mark.slow
def test_linkage_scales_without_all_pairs(benign_prompts: list[str]) -> None:
    """20,000 accounts: candidate generation by blocking stays fast."""
    import time

    t = TrafficBuilder(5)
    for i in range(20000):
        t.account(f"a{i}", benign_prompts[:50], n=2, ua=f"ua{i % 50}")
    feats = request_features(t.events())
    start = time.perf_counter()
    HydraLinker().link(feats, t.accounts_table())
    assert time.perf_counter() - start < 120
    assert np.isfinite(start)


def test_components_of_one_operator_merge_on_pooled_evidence(
    benign_prompts: list[str],
) -> None:
    # two groups, each linked inside by its own card; across the groups no pair of accounts
    # has enough evidence (two share a network, 4 < 4.5, two others a client, 1), but the
    # groups as wholes share the network and the client (4 + 1): one operator
    from datetime import timedelta

    from .conftest import T0

    def build(ua_b: str) -> tuple[pa.Table, pa.Table]:
        t = TrafficBuilder(5)
        for g in ("A", "B"):
            for j in range(4):
                day = {"A": 0, "B": 4}[g] + j
                ua = ("ua_shared" if g == "A" else ua_b) if j >= 2 else f"ua_{g}{j}"
                t.account(f"{g}{j}", benign_prompts, n=12, start=T0 + timedelta(days=day),
                          ip_net="net_shared" if j < 2 else None, payment=f"card_{g}",
                          ua=ua, channel="reseller:x")
        return request_features(t.events()), t.accounts_table()

    feats, accounts = build("ua_shared")
    clusters = HydraLinker(threshold=4.5, channel_cap=0.0).link(feats, accounts)
    group_a, group_b = [f"A{j}" for j in range(4)], [f"B{j}" for j in range(4)]
    assert [sorted(c.members) for c in clusters] == [group_a + group_b]
    alone = HydraLinker(threshold=4.5, channel_cap=0.0, attach=False).link(feats, accounts)
    assert sorted(sorted(c.members) for c in alone) == [group_a, group_b]
    # between groups the channel stays capped (one reseller serves many operators): the
    # network (4) and the channel (1, capped at 0.4) do not reach 4.5
    feats, accounts = build("ua_other")
    clusters = HydraLinker(threshold=4.5, channel_cap=0.4).link(feats, accounts)
    assert sorted(sorted(c.members) for c in clusters) == [group_a, group_b]


def test_lone_member_attaches_by_a_token_no_benign_account_holds(
    benign_prompts: list[str],
) -> None:
    # a cluster linked by its card; two strangers share its reseller channel and a client:
    # the operator's own client (held by no benign reference account) attaches one, the
    # popular client that a third of benign accounts use does not attach the other
    ref = _reference(benign_prompts)
    linker = HydraLinker(threshold=4.8).fit(request_features(ref.events()), ref.accounts_table())
    t = TrafficBuilder(6)
    for j in range(10):
        t.account(f"H{j}", benign_prompts, n=10, ua="ua_op", payment="pay_H",
                  channel="reseller:r")
    t.account("S_own_client", benign_prompts, n=10, ua="ua_op", channel="reseller:r")
    t.account("S_popular_client", benign_prompts, n=10, ua="ua_python", channel="reseller:r")
    for i in range(20):
        t.account(f"ben{i}", benign_prompts, n=10, ua="ua_python" if i % 3 == 0 else None)
    clusters = linker.link(request_features(t.events()), t.accounts_table())
    members = {m for c in clusters for m in c.members}
    assert {f"H{j}" for j in range(10)} | {"S_own_client"} <= members
    assert "S_popular_client" not in members
    assert not any(m.startswith("ben") for m in members)


def test_pooled_evidence_weighs_less_the_more_distinct_tokens_a_cluster_holds() -> None:
    # a stranger sharing one client with a cluster that itself runs 1, 5 or 20 clients: the
    # more distinct clients pooled, the likelier a chance match, the weaker the evidence
    linker = HydraLinker()
    n = 30
    totals = []
    for n_clients in (1, 5, 20):
        labels = np.zeros(n, np.int64)  # accounts 0..28 in cluster 0, account 29 alone
        labels[29] = 29
        groups = [("ua", f"u{c}", np.array([2 * c % 29, (2 * c + 1) % 29]))
                  for c in range(1, n_clients)]
        groups.append(("ua", "u0", np.array([0, 1, 29])))
        acct, pool, typical = linker._token_counts(groups, labels, n, np.full(n, 2))
        assert pool[0, 1] == n_clients  # distinct clients held by >= 2 members
        rows = ([np.array([29])], [np.array([0])], [np.array([1])], [np.array([0.0])])
        _pair, total = linker._pooled(*rows, n, acct, pool, typical, between="clusters")
        totals.append(float(total[0]))
    assert totals[0] == pytest.approx(linker._weights()["ua"][0])  # one client: no discount
    assert totals[0] > totals[1] > totals[2]
    assert totals[0] - totals[2] > 0.9  # about log10(20 / typical^2), typical ~1.4


def test_members_held_by_a_single_edge_are_named_with_its_weight(
    benign_prompts: list[str],
) -> None:
    # ten accounts of one operator share its card (many edges each); a stranger shares one
    # network with one of them only: one edge, which can be a coincidence
    ref = _reference(benign_prompts)
    fitted = HydraLinker().fit(request_features(ref.events()), ref.accounts_table())
    net_w = fitted.weights_["net"][0]
    linker = HydraLinker(threshold=net_w - 0.1, attach=False).fit(
        request_features(ref.events()), ref.accounts_table())
    t = TrafficBuilder(8)
    for j in range(10):
        t.account(f"H{j}", benign_prompts, n=10, payment="pay_H",
                  ip_net="net_shared" if j == 0 else f"net_H{j}")
    t.account("S", benign_prompts, n=10, ip_net="net_shared", payment="pay_S")
    for i in range(20):
        t.account(f"ben{i}", benign_prompts, n=10)
    clusters = linker.link(request_features(t.events()), t.accounts_table())
    (cluster,) = [c for c in clusters if "H0" in c.members]
    assert "S" in cluster.members
    assert set(cluster.single_edge) == {"S"}
    assert cluster.single_edge["S"] == pytest.approx(net_w)


def test_loosely_linked_members_need_their_own_evidence() -> None:
    from distillwarden.detect.linkage import HydraCluster
    from distillwarden.detect.scoring import loosely_linked

    c = HydraCluster("hyd_x", ("a", "b", "s"), {"edge_threshold": 5.0}, 5.0,
                     single_edge={"s": 5.2, "b": 7.0})
    assert loosely_linked(c, ["a", "b", "s"], 1.0).tolist() == [False, False, True]
    assert loosely_linked(c, ["a", "b", "s"], 3.0).tolist() == [False, True, True]


def test_signup_bands_join_accounts_created_within_12_hours() -> None:
    from datetime import UTC, datetime

    from distillwarden.detect.linkage import _signup_tokens

    def bands(**created: datetime | str) -> dict[str, set[str]]:
        acc = pa.table({"org_id": list(created) + ["absent"],
                        "created": [*created.values(), next(iter(created.values()))]})
        out = _signup_tokens(acc, pa.array(list(created)))
        assert out is not None
        got: dict[str, set[str]] = {}
        for o, k, v in zip(*(out.column(c).to_pylist() for c in ("org_id", "kind", "value")),
                           strict=True):
            assert k == "signup"
            got.setdefault(o, set()).add(v)
        return got

    d = datetime
    got = bands(late=d(2026, 2, 13, 23, tzinfo=UTC), early=d(2026, 2, 14, 1, tzinfo=UTC),
                far=d(2026, 2, 17, 1, tzinfo=UTC))
    assert "absent" not in got  # only accounts seen in the window
    assert got["late"] == {"d:2026-02-13", "n:2026-02-14"}
    assert got["late"] & got["early"] == {"n:2026-02-14"}  # across midnight, by the noon band
    assert not got["far"] & (got["late"] | got["early"])
    # RFC 3339 text (an accounts file read without types) is read as a time
    got = bands(a="2026-02-13T05:00:00+00:00", b="2026-02-13T18:00:00Z")
    assert got["a"] & got["b"] == {"d:2026-02-13"}
    for bad in ([3], ["last spring"]):  # a number or text that is no time: skipped
        assert _signup_tokens(pa.table({"org_id": ["a"], "created": bad}),
                              pa.array(["a"])) is None
    assert _signup_tokens(pa.table({"org_id": ["a"]}), pa.array(["a"])) is None


@given(st.integers(0, 10**9), st.integers(0, 3 * 86_400))
@settings(max_examples=200, deadline=None)
def test_signup_bands_share_below_12_hours_and_never_a_day_apart(t0: int, gap: int) -> None:
    from datetime import UTC, datetime, timedelta

    from distillwarden.detect.linkage import _signup_tokens

    a = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=t0)
    acc = pa.table({"org_id": ["a", "b"], "created": [a, a + timedelta(seconds=gap)]})
    out = _signup_tokens(acc, pa.array(["a", "b"]))
    assert out is not None
    held = {o: {v for oo, v in zip(out.column("org_id").to_pylist(),
                                  out.column("value").to_pylist(), strict=True) if oo == o}
            for o in ("a", "b")}
    shared = held["a"] & held["b"]
    if gap < 12 * 3600:
        assert shared
    if gap >= 86_400:
        assert not shared


def _burst_linker(benign_prompts: list[str]) -> HydraLinker:
    # sign-ups spread over years; however much a shared sign-up day may weigh between two
    # clusters (signup_cap), between two accounts it weighs nothing
    ref = _reference(benign_prompts)
    return HydraLinker(threshold=4.8, signup_cap=4.0).fit(
        request_features(ref.events()), ref.accounts_table())


def test_lone_member_attaches_by_its_clusters_signup_burst(benign_prompts: list[str]) -> None:
    # ten accounts linked by their card, all signed up within two days through one reseller;
    # strangers through the same reseller share nothing else with them
    from datetime import timedelta

    from .conftest import T0

    linker = _burst_linker(benign_prompts)
    assert linker.weights_["signup"][0] > 1.0  # few benign accounts sign up on one day
    burst = T0 - timedelta(days=20)
    t = TrafficBuilder(9)
    for j in range(10):
        t.account(f"H{j}", benign_prompts, n=10, payment="pay_H", channel="reseller:r",
                  created=burst + timedelta(hours=5 * j))
    t.account("S_in_burst", benign_prompts, n=10, channel="reseller:r",
              created=burst + timedelta(hours=20))
    t.account("S_months_before", benign_prompts, n=10, channel="reseller:r",
              created=burst - timedelta(days=200))
    t.account("S_direct_in_burst", benign_prompts, n=10, created=burst + timedelta(hours=20))
    # two strangers through the reseller, signed up together in the burst: between two
    # accounts a shared day is no evidence (many people sign up on any day)
    for s in ("P1", "P2"):
        t.account(s, benign_prompts, n=10, channel="reseller:q",
                  created=burst + timedelta(hours=10))
    for i in range(20):
        t.account(f"ben{i}", benign_prompts, n=10)
    clusters = linker.link(request_features(t.events()), t.accounts_table())
    (cluster,) = [c for c in clusters if "H0" in c.members]
    assert set(cluster.members) == {f"H{j}" for j in range(10)} | {"S_in_burst"}
    assert "signup" in cluster.evidence["shared"]
    linked = {m for c in clusters for m in c.members}
    assert not linked & {"S_months_before", "S_direct_in_burst", "P1", "P2"}


def test_a_cluster_signed_up_over_months_holds_no_signup_day(
    benign_prompts: list[str],
) -> None:
    # forty accounts linked by their card signed up over two years; two of them on the same
    # day as a stranger through their reseller: two of forty is no burst, no attachment
    from datetime import timedelta

    from .conftest import T0

    linker = _burst_linker(benign_prompts)
    day = T0 - timedelta(days=20)
    t = TrafficBuilder(10)
    for j in range(40):
        created = day + timedelta(hours=j) if j < 2 else day - timedelta(days=18 * j)
        t.account(f"H{j}", benign_prompts, n=10, payment="pay_H", channel="reseller:r",
                  created=created)
    t.account("S", benign_prompts, n=10, channel="reseller:r", created=day + timedelta(hours=1))
    for i in range(20):
        t.account(f"ben{i}", benign_prompts, n=10)
    clusters = linker.link(request_features(t.events()), t.accounts_table())
    (cluster,) = [c for c in clusters if "H0" in c.members]
    assert "S" not in cluster.members


def test_signup_times_all_on_one_day_are_not_signup_times(caplog: pytest.LogCaptureFixture) -> None:
    # an accounts table whose 'created' is the day the accounts were migrated: no bursts
    from datetime import UTC, datetime, timedelta

    from distillwarden.detect.linkage import _signup_tokens

    day = datetime(2026, 2, 13, 9, tzinfo=UTC)
    orgs = [f"o{i}" for i in range(40)]
    migrated = pa.table({"org_id": orgs, "created": [
        day + timedelta(minutes=i) if i < 30 else day - timedelta(days=40 * i) for i in range(40)]})
    with caplog.at_level("WARNING", logger="distillwarden.detect.linkage"):
        assert _signup_tokens(migrated, pa.array(orgs)) is None
    assert "not a sign-up time" in caplog.text
    # a burst of a fifth of the accounts on one day is what sign-up evidence is for
    burst = pa.table({"org_id": orgs, "created": [
        day + timedelta(minutes=i) if i < 8 else day - timedelta(days=40 * i) for i in range(40)]})
    assert _signup_tokens(burst, pa.array(orgs)) is not None


def _shifts(
    t: TrafficBuilder, org: str, prompts: list[str], hours: list[int], *, days: int = 7,
    share: float = 0.6, payment: str | None = None, channel: str = "direct",
) -> None:
    """``org`` works a random ``share`` of the shifts starting at each of ``hours`` (UTC) on
    each of ``days`` days, a few requests per shift."""
    from datetime import timedelta

    from .conftest import T0

    for day in range(days):
        for h in hours:
            if t.rng.random() < share:
                t.account(org, prompts, n=4, start=T0 + timedelta(days=day, hours=h),
                          mean_gap_s=300.0, payment=payment, channel=channel,
                          ua=f"ua_{org}")


def _unique_rows(t: TrafficBuilder) -> tuple[pa.Table, pa.Table]:
    for i, row in enumerate(t.rows):
        row["event_id"] = f"evt_{i:06d}"
    t.accounts = list({a["org_id"]: a for a in t.accounts}.values())
    return request_features(t.events()), t.accounts_table()


@pytest.mark.parametrize("case", ["same_night_shifts", "other_shifts", "common_shifts"])
def test_groups_keeping_one_operators_shifts_merge(benign_prompts: list[str], case: str) -> None:
    # two groups, each linked inside by its own card, send the same templates: not enough to
    # merge them. Working the same night shifts (each member a random third of them, so no
    # two members share a timing band) they are one operator's; not when they keep different
    # hours, nor when the hours they share are the ones the benign accounts keep
    ref = TrafficBuilder(3)
    for i in range(80):
        start_hours = sorted(ref.rng.choice(20, 2, replace=False).tolist())
        _shifts(ref, f"ref{i}", benign_prompts, start_hours, share=0.5)
    reference = _unique_rows(ref)
    linker = HydraLinker(threshold=5.0).fit(*reference)
    ds = attack_prompts("dataset", benign_prompts, k=2)
    t = TrafficBuilder(7)
    night, day = [1, 3, 5], [10, 12, 14]
    shifts_a = day if case == "common_shifts" else night
    shifts_b = {"same_night_shifts": night, "other_shifts": [17, 19, 21],
                "common_shifts": day}[case]
    for g, shifts in (("A", shifts_a), ("B", shifts_b)):
        for j in range(5):
            _shifts(t, f"{g}{j}", ds, shifts, share=0.35, payment=f"card_{g}")
    for i in range(60):
        _shifts(t, f"ben{i}", benign_prompts, day, share=0.5)
    feats, accounts = _unique_rows(t)
    group_a, group_b = [f"A{j}" for j in range(5)], [f"B{j}" for j in range(5)]
    apart = HydraLinker(threshold=5.0, synchrony=False).fit(*reference)
    assert sorted(sorted(c.members) for c in apart.link(feats, accounts)) == [group_a, group_b]
    clusters = linker.link(feats, accounts)
    got = sorted(sorted(c.members) for c in clusters)
    if case == "same_night_shifts":
        assert got == [group_a + group_b]
        # the cluster names the schedule that joined its groups: the night shifts' hours
        schedule = clusters[0].evidence["shared"]["schedule"]
        assert 0 < schedule["weight"] <= linker.weights_["time"][-1]
        assert schedule["hours"] >= 7  # the shifts of a week that two members of a group work
    else:
        assert got == [group_a, group_b]
        assert not any("schedule" in c.evidence["shared"] for c in clusters)


def test_active_hours_marks_each_accounts_hours_of_the_window() -> None:
    from datetime import UTC, datetime, timedelta

    from distillwarden.detect.linkage import _active_hours

    t0 = datetime(2026, 1, 1, 5, 10, tzinfo=UTC)
    ts = [t0, t0, t0 + timedelta(hours=2), t0, t0 + timedelta(minutes=40)]
    feats = pa.table({
        "org_id": pa.array(["a", "b", "a", "c", "a"]).dictionary_encode(),
        "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
    })
    # hours counted from the window's first; "c" is not asked for; 05:50 is still hour 5
    got = _active_hours(feats, ["a", "b"]).toarray()
    assert got.tolist() == [[1, 0, 1], [1, 0, 0]]
