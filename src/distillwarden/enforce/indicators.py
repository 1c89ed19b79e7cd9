"""Indicator sharing between providers as STIX 2.1 bundles, without customer content.

What is shared (all as keyed hashes, never text, addresses or account ids):

* **template fingerprints**: HMAC(sharing key, skeleton) of the prompt templates an account
  fills over and over; the skeleton is the prompt's first or last words after the variable
  slots (numbers, quoted strings, placeholders) are collapsed. Two providers with the same
  sharing key compute the same fingerprint for the same template, so an importer finds the
  accounts on its side that run the same extraction scripts.
* **infrastructure hashes**: HMAC(sharing key, the installation's hash of a /24 or /48
  network, user agent or payment fingerprint). The event log keeps only hashes keyed with the
  installation secret, so these match only between installations sharing that secret (the
  regions of one provider); the indicator says which key it was derived from.
* **cluster summaries**: size, activity window, request count and the fingerprints above, as
  a custom ``x-distillwarden-cluster-summary`` object.

Every object carries the producer ``Identity`` and a TLP marking. Indicators are STIX
patterns over custom object types (``[x-distillwarden-template:fingerprint = '…']``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import stix2
from sqlalchemy import select
from sqlalchemy.orm import Session
from stix2.properties import (
    IntegerProperty,
    ListProperty,
    ReferenceProperty,
    StringProperty,
    TimestampProperty,
)

from ..store.models import Cluster, Organization

__all__ = [
    "COMMUNITY_SHARING_KEY",
    "IndicatorError",
    "IndicatorMatch",
    "ImportReport",
    "export_indicators",
    "import_indicators",
    "key_id",
    "template_fingerprints",
]

#: Default key for template fingerprints. Public, so fingerprints of short templates could be
#: confirmed by anyone who guesses the template: trust groups should agree on their own key.
COMMUNITY_SHARING_KEY = b"distillwarden-community-indicators-v1"

_TLP = {"white": stix2.TLP_WHITE, "green": stix2.TLP_GREEN, "amber": stix2.TLP_AMBER,
        "red": stix2.TLP_RED}

_SLOT = re.compile(
    r"\"[^\"\n]{0,200}\"|“[^”\n]{0,200}”|'[^'\n]{2,200}'|`[^`\n]{0,200}`|"
    r"\{\{?\s*[A-Za-z_][A-Za-z0-9_.]*\s*\}?\}|\[[A-Z_ ]{2,40}\]|<[A-Za-z_ ]{2,40}>|"
    r"[0-9]+(?:[.,][0-9]+)*"
)
_WORD = re.compile(r"[a-z<>_]+")
_SKELETON_WORDS = (6, 12)

_KIND_PATTERN = {
    "template": "x-distillwarden-template:fingerprint",
    "ip_net": "x-distillwarden-infrastructure:network_hash",
    "user_agent": "x-distillwarden-infrastructure:user_agent_hash",
    "payment": "x-distillwarden-infrastructure:payment_hash",
}
_PATTERN_RE = re.compile(r"^\[(x-distillwarden-[a-z]+:[a-z_]+) = '([0-9a-f]{16,64})'\]$")


class IndicatorError(ValueError):
    """An indicator bundle cannot be produced or read; the message says what to fix."""


@stix2.CustomObject(
    "x-distillwarden-cluster-summary",
    [
        ("name", StringProperty(required=True)),
        ("size", IntegerProperty(required=True)),
        ("requests", IntegerProperty()),
        ("first_seen", TimestampProperty()),
        ("last_seen", TimestampProperty()),
        ("indicator_refs", ListProperty(ReferenceProperty(valid_types="indicator", spec_version="2.1"))),
        ("detector_summary", StringProperty()),
    ],
)
class ClusterSummary:
    """A linked-account cluster described without customer identities or content."""


def key_id(key: bytes) -> str:
    """A public identifier of a key (so an importer knows whether hashes can match)."""
    return hashlib.sha256(b"distillwarden-key-id\x00" + key).hexdigest()[:16]


def _keyed(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()


def skeletons(text: str | None) -> list[str]:
    """The template skeletons of one prompt: its first and last 6 and 12 words after the
    variable slots are collapsed (a template's fixed text is at its start or its end)."""
    if not text:
        return []
    words = _WORD.findall(_SLOT.sub(" <slot> ", text.lower()))
    out = []
    for n in _SKELETON_WORDS:
        if len(words) >= n:
            out.append(f"head{n}:" + " ".join(words[:n]))
            out.append(f"tail{n}:" + " ".join(words[-n:]))
    return out


def template_fingerprints(
    events: pa.Table, key: bytes, *, min_count: int = 5, min_share: float = 0.1
) -> dict[str, Counter[str]]:
    """org_id -> {fingerprint: requests} for skeletons an account repeats at least
    ``min_count`` times and in at least ``min_share`` of its requests."""
    per_org: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    cols = events.column_names
    text_col = "last_user_text" if "last_user_text" in cols else "prompt_text"
    for org, text, prompt in zip(
        events.column("org_id").to_pylist(),
        events.column(text_col).to_pylist(),
        events.column("prompt_text").to_pylist() if "prompt_text" in cols else
        [None] * events.num_rows,
        strict=True,
    ):
        totals[org] += 1
        for sk in set(skeletons(text or prompt)):
            per_org[org][sk] += 1
    out: dict[str, Counter[str]] = {}
    for org, counts in per_org.items():
        keep = Counter({
            _keyed(key, "template", sk): n for sk, n in counts.items()
            if n >= min_count and n >= min_share * totals[org]
        })
        if keep:
            out[org] = keep
    return out


def _infra(events: pa.Table, orgs: set[str], column: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    if column not in events.column_names:
        return counts
    for org, v in zip(events.column("org_id").to_pylist(), events.column(column).to_pylist(),
                      strict=True):
        if org in orgs and v:
            counts[v] += 1
    return counts


def _read(events_dir: Path, orgs: Sequence[str] | None = None) -> pa.Table:
    from ..events.reader import read_events

    return read_events(
        events_dir, orgs=orgs,
        columns=["org_id", "ts", "prompt_text", "last_user_text", "ip_net_hash", "ua_hash"],
    )


def _targets(session: Session, org_ids: Sequence[str], cluster_ids: Sequence[str]
             ) -> tuple[list[str], dict[str, list[str]]]:
    clusters: dict[str, list[str]] = {}
    for cid in cluster_ids:
        c = session.get(Cluster, cid)
        if c is None:
            raise IndicatorError(f"unknown cluster {cid!r}; clusters come from detection")
        clusters[cid] = [str(m) for m in c.members or []]
    orgs = list(dict.fromkeys([*org_ids, *(m for ms in clusters.values() for m in ms)]))
    if not orgs:
        orgs = list(session.scalars(
            select(Organization.id).where(Organization.status.in_(("suspended", "terminated")))
        ))
    if not orgs:
        raise IndicatorError(
            "nothing to export: name organizations or clusters (no account is suspended or "
            "terminated either)"
        )
    known = set(session.scalars(select(Organization.id).where(Organization.id.in_(orgs))))
    missing = [o for o in orgs if o not in known]
    if missing:
        raise IndicatorError(f"unknown organization(s) {missing}; nothing was exported")
    return orgs, clusters


def export_indicators(
    session: Session,
    events_dir: str | Path,
    *,
    installation_secret: bytes,
    org_ids: Sequence[str] = (),
    cluster_ids: Sequence[str] = (),
    producer: str = "distillwarden operator",
    sharing_key: bytes = COMMUNITY_SHARING_KEY,
    tlp: str = "amber",
    min_count: int = 5,
    max_benign_share: float = 0.05,
) -> stix2.Bundle:
    """A STIX 2.1 bundle of indicators for the given accounts/clusters (default: every
    suspended or terminated account). Template fingerprints that more than
    ``max_benign_share`` of the *other* accounts also use are left out (common phrasing,
    not an extraction script)."""
    if tlp not in _TLP:
        raise IndicatorError(f"unknown TLP {tlp!r}; use one of {', '.join(_TLP)}")
    orgs, clusters = _targets(session, org_ids, cluster_ids)
    target = set(orgs)
    events = _read(Path(events_dir))
    fps = template_fingerprints(events, sharing_key, min_count=min_count)
    others = [o for o in set(events.column("org_id").to_pylist()) if o not in target]
    common: Counter[str] = Counter()
    for o in others:
        common.update(set(fps.get(o, {})))
    limit = max(1.0, max_benign_share * len(others))
    marking = _TLP[tlp]
    identity = stix2.Identity(name=producer, identity_class="organization",
                              object_marking_refs=[marking])
    now = datetime.now(UTC)
    ikey = key_id(installation_secret)
    skey = key_id(sharing_key)
    objects: list[Any] = [identity, marking]
    ind_by_value: dict[tuple[str, str], stix2.Indicator] = {}

    def indicator(kind: str, value: str, accounts: int, hits: int, derived_from: str) -> str:
        if (kind, value) in ind_by_value:
            return str(ind_by_value[(kind, value)].id)
        ind = stix2.Indicator(
            name=f"distillwarden {kind} indicator",
            description=f"seen in {accounts} account(s), {hits} request(s) linked to "
            "model-extraction traffic",
            indicator_types=["malicious-activity"],
            pattern=f"[{_KIND_PATTERN[kind]} = '{value}']",
            pattern_type="stix",
            valid_from=now,
            created_by_ref=identity.id,
            object_marking_refs=[marking],
            custom_properties={
                "x_distillwarden_kind": kind,
                "x_distillwarden_sharing_key_id": skey,
                "x_distillwarden_derived_from": derived_from,
            },
        )
        ind_by_value[(kind, value)] = ind
        objects.append(ind)
        return str(ind.id)

    refs_by_org: dict[str, list[str]] = defaultdict(list)
    template_accounts: Counter[str] = Counter()
    template_hits: Counter[str] = Counter()
    for o in orgs:
        for fp, n in fps.get(o, Counter()).items():
            if common[fp] <= limit:
                template_accounts[fp] += 1
                template_hits[fp] += n
    for o in orgs:
        for fp in fps.get(o, Counter()):
            if fp in template_accounts:
                refs_by_org[o].append(indicator("template", fp, template_accounts[fp],
                                                template_hits[fp], "prompt-skeleton"))
    for kind, column in (("ip_net", "ip_net_hash"), ("user_agent", "ua_hash")):
        for value, n in _infra(events, target, column).most_common(50):
            indicator(kind, _keyed(sharing_key, kind, value), 0, n, f"installation:{ikey}")
    for org in session.scalars(select(Organization).where(Organization.id.in_(orgs))):
        if org.payment_fingerprint_hash:
            refs_by_org[org.id].append(indicator(
                "payment", _keyed(sharing_key, "payment", org.payment_fingerprint_hash), 1, 0,
                f"installation:{ikey}"))
    ts = events.column("ts").to_pylist() if events.num_rows else []
    org_col = events.column("org_id").to_pylist() if events.num_rows else []
    for cid, members in clusters.items():
        mts = [t for t, o in zip(ts, org_col, strict=True) if o in set(members)]
        refs = sorted({r for m in members for r in refs_by_org.get(m, [])})
        objects.append(ClusterSummary(  # type: ignore[call-arg]
            name=f"cluster {hashlib.sha256(cid.encode()).hexdigest()[:12]}",
            size=len(members), requests=len(mts),
            first_seen=min(mts) if mts else None, last_seen=max(mts) if mts else None,
            indicator_refs=refs, created_by_ref=identity.id, object_marking_refs=[marking],
            detector_summary="accounts linked by shared infrastructure, templates or payment",
            allow_custom=True,
        ))
    return stix2.Bundle(objects=objects, allow_custom=True)


@dataclass(frozen=True)
class IndicatorMatch:
    """One of our accounts matching one shared indicator."""

    indicator_id: str
    kind: str
    org_id: str
    hits: int


@dataclass
class ImportReport:
    """What an imported bundle matched on our side."""

    producer: str | None = None
    tlp: str | None = None
    indicators: int = 0
    matches: list[IndicatorMatch] = field(default_factory=list)
    cluster_summaries: list[dict[str, Any]] = field(default_factory=list)
    not_matchable: list[str] = field(default_factory=list)
    ignored: int = 0

    def accounts(self) -> dict[str, int]:
        """org_id -> number of distinct indicators it matched."""
        out: dict[str, set[str]] = defaultdict(set)
        for m in self.matches:
            out[m.org_id].add(m.indicator_id)
        return {o: len(s) for o, s in sorted(out.items(), key=lambda kv: -len(kv[1]))}


def _load_bundle(source: str | Path | dict[str, Any]) -> Any:
    if isinstance(source, dict):
        raw: Any = source
    else:
        text = str(source)
        p = Path(text) if not text.lstrip().startswith("{") else None
        try:
            raw = json.loads(p.read_text() if p is not None else text)
        except OSError as exc:
            raise IndicatorError(f"cannot read {p}: {exc.strerror}") from exc
        except ValueError as exc:
            raise IndicatorError(f"not JSON: {exc}; expected a STIX 2.1 bundle") from exc
    if not isinstance(raw, dict) or raw.get("type") != "bundle":
        raise IndicatorError("not a STIX bundle (top-level object must have type 'bundle')")
    try:
        return stix2.parse(raw, allow_custom=True)
    except (stix2.exceptions.STIXError, ValueError, TypeError) as exc:
        raise IndicatorError(f"invalid STIX 2.1 bundle: {exc}") from exc


def import_indicators(
    source: str | Path | dict[str, Any],
    events_dir: str | Path,
    *,
    installation_secret: bytes,
    session: Session | None = None,
    sharing_key: bytes = COMMUNITY_SHARING_KEY,
    min_count: int = 2,
) -> ImportReport:
    """Match a shared bundle against our event log (and accounts' payment hashes)."""
    bundle = _load_bundle(source)
    report = ImportReport()
    skey, ikey = key_id(sharing_key), key_id(installation_secret)
    wanted: dict[str, dict[str, str]] = defaultdict(dict)  # kind -> value -> indicator id
    for obj in bundle.objects or []:
        otype = obj["type"]
        if otype == "identity":
            report.producer = str(obj["name"])
        elif otype == "marking-definition":
            report.tlp = str(obj.get("name") or obj.get("definition", {}).get("tlp"))
        elif otype == "x-distillwarden-cluster-summary":
            report.cluster_summaries.append(
                {k: str(obj[k]) if k in ("first_seen", "last_seen") else obj[k]
                 for k in ("name", "size", "requests", "first_seen", "last_seen")
                 if k in obj})
        elif otype == "indicator":
            m = _PATTERN_RE.match(str(obj["pattern"]))
            kind = obj.get("x_distillwarden_kind")
            if m is None or kind not in _KIND_PATTERN:
                report.ignored += 1
                continue
            report.indicators += 1
            if obj.get("x_distillwarden_sharing_key_id") != skey:
                report.not_matchable.append(f"{obj['id']}: made with another sharing key")
                continue
            derived = str(obj.get("x_distillwarden_derived_from", ""))
            if derived.startswith("installation:") and derived != f"installation:{ikey}":
                report.not_matchable.append(
                    f"{obj['id']}: {kind} hash from another installation's secret")
                continue
            wanted[kind][m.group(2)] = str(obj["id"])
        else:
            report.ignored += 1
    events = _read(Path(events_dir))
    if wanted.get("template"):
        for org, counts in template_fingerprints(events, sharing_key, min_count=min_count,
                                                 min_share=0.0).items():
            for fp, n in counts.items():
                if fp in wanted["template"]:
                    report.matches.append(IndicatorMatch(wanted["template"][fp], "template",
                                                         org, n))
    for kind, column in (("ip_net", "ip_net_hash"), ("user_agent", "ua_hash")):
        if not wanted.get(kind) or column not in events.column_names:
            continue
        hits: Counter[tuple[str, str]] = Counter()
        for org, v in zip(events.column("org_id").to_pylist(),
                          events.column(column).to_pylist(), strict=True):
            if v:
                hv = _keyed(sharing_key, kind, v)
                if hv in wanted[kind]:
                    hits[(org, hv)] += 1
        report.matches += [IndicatorMatch(wanted[kind][hv], kind, org, n)
                           for (org, hv), n in hits.items()]
    if wanted.get("payment") and session is not None:
        for acct in session.scalars(select(Organization).where(
                Organization.payment_fingerprint_hash.is_not(None))):
            hv = _keyed(sharing_key, "payment", str(acct.payment_fingerprint_hash))
            if hv in wanted["payment"]:
                report.matches.append(
                    IndicatorMatch(wanted["payment"][hv], "payment", acct.id, 1))
    return report


def bundle_json(bundle: stix2.Bundle) -> str:
    """Serialise a bundle (pretty, stable key order)."""
    return str(bundle.serialize(pretty=True))


def iter_indicator_values(bundle: stix2.Bundle) -> Iterable[tuple[str, str]]:
    """(kind, hashed value) of every distillwarden indicator in a bundle."""
    for obj in bundle.objects or []:
        if obj["type"] == "indicator":
            m = _PATTERN_RE.match(str(obj["pattern"]))
            if m:
                yield str(obj.get("x_distillwarden_kind")), m.group(2)
