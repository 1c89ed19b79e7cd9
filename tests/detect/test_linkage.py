"""Hydra linkage: shared infrastructure and templates link accounts; benign stay apart."""

from __future__ import annotations

import numpy as np
import pytest
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
    # has enough evidence (a shared network weighs 4 < 4.5, the channel is capped at 0 for
    # pairs), but the groups as wholes share the network and the channel: one operator
    from datetime import timedelta

    from .conftest import T0

    t = TrafficBuilder(5)
    for g in ("A", "B"):
        for j in range(3):
            day = {"A": 0, "B": 3}[g] + j
            t.account(f"{g}{j}", benign_prompts, n=12, start=T0 + timedelta(days=day),
                      ip_net="net_shared" if j < 2 else None, payment=f"card_{g}",
                      channel="reseller:x")
    feats = request_features(t.events())
    linker = HydraLinker(threshold=4.5, channel_cap=0.0)
    clusters = linker.link(feats, t.accounts_table())
    assert [sorted(c.members) for c in clusters] == [["A0", "A1", "A2", "B0", "B1", "B2"]]
    alone = HydraLinker(threshold=4.5, channel_cap=0.0, attach=False).link(
        feats, t.accounts_table())
    assert sorted(sorted(c.members) for c in alone) == [["A0", "A1", "A2"], ["B0", "B1", "B2"]]
