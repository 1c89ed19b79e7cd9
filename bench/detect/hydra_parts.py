"""How the linkage splits each labelled hydra of a scenario: the parts it forms and the
members it leaves alone.

Fits the default detector (no embeddings) on the scenario's benign reference accounts, as
the evaluation harness does, links the scored accounts and prints, per hydra, the sizes of
the clusters its members fall into and how many stay unattached, then the adjusted Rand
index over hydra members (the harness's ``hydra_ari``). A cluster that the shared-schedule
evidence joined names it (``schedules``: its hours and weight, per part); ``--no-synchrony``
links without that evidence:

    python bench/detect/hydra_parts.py --data /tmp/dw/hydra
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True, help="a simulated dataset directory")
    ap.add_argument("--no-synchrony", action="store_true",
                    help="link without the clusters' shared schedules")
    args = ap.parse_args(argv)

    from distillwarden.detect.features import request_features
    from distillwarden.detect.linkage import HydraLinker
    from distillwarden.detect.scoring import DistillationDetector
    from distillwarden.evaluate.harness import Dataset, _filter_orgs, split_accounts
    from distillwarden.evaluate.metrics import adjusted_rand

    ds = Dataset.open(args.data)
    labels = ds.labels()
    split = split_accounts(labels)
    det = DistillationDetector(use_embeddings=False,
                               linker=HydraLinker(synchrony=not args.no_synchrony))
    events = ds.events(columns=sorted(set(det.required_columns) | {"org_id", "ts", "event_id"}))
    accounts = ds.accounts()
    det.fit(_filter_orgs(events, split.reference), accounts)
    scored = request_features(_filter_orgs(events, split.scored), index=det.benchmark_index)
    clusters = det.linker_.link(scored, accounts, {})
    cluster_of = {m: c.cluster_id for c in clusters for m in c.members}
    schedule_of = {c.cluster_id: c.evidence["shared"]["schedule"] for c in clusters
                   if "schedule" in c.evidence["shared"]}

    hydra = [o for o in split.attackers if labels[o].get("cluster")]
    parts: dict[str, Counter[str | None]] = defaultdict(Counter)
    for o in hydra:
        parts[str(labels[o]["cluster"])][cluster_of.get(o)] += 1
    benign_linked = sum(1 for o in split.scored
                        if not labels[o].get("cluster") and o in cluster_of
                        and labels[o].get("label") == "benign")
    out = {
        "hydras": {
            name: {"members": sum(c.values()),
                   "parts": sorted((n for k, n in c.items() if k is not None), reverse=True),
                   "unattached": c.get(None, 0),
                   "schedules": [schedule_of[k] for k in c if k in schedule_of]}
            for name, c in sorted(parts.items(), key=lambda kv: -sum(kv[1].values()))
        },
        "benign_accounts_in_clusters": benign_linked,
        "hydra_ari": adjusted_rand([str(labels[o]["cluster"]) for o in hydra],
                                   [cluster_of.get(o) for o in hydra]),
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
