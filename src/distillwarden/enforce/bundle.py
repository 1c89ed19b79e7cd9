"""Self-contained, verifiable evidence bundles for a case (JSON + HTML).

``export_bundle`` writes a folder:

* ``case.json``: the case, the accounts and their licences and status history, the timeline
  with every piece of evidence (findings, example requests, report files), the audit-chain
  entries that concern the case with their hashes, and plain-words explanations;
* ``index.html``: the same for a lawyer or the customer, readable offline;
* ``attachments/``: attached report files, byte for byte;
* ``manifest.json``: sha256 of every other file.

:func:`verify_bundle` checks it without the provider's database: the manifest hashes, each
audit entry's hash over its content and predecessor, and that each timeline entry's digest is
the one recorded in the audit chain when it was added.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import __version__
from ..store import audit, services
from ..store.errors import InvalidInput
from ..store.models import AuditEntry, CaseEntry
from . import cases as case_ops

__all__ = [
    "BUNDLE_FORMAT",
    "BundleVerification",
    "explain_finding",
    "export_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "distillwarden-evidence-bundle/1"

_env = Environment(
    loader=PackageLoader("distillwarden.enforce", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
)


def _one_in(p: float) -> str:
    if p <= 0:
        return "effectively zero"
    n = 1 / p
    if n < 10:
        return f"about {p:.0%}"
    exp = int(math.floor(math.log10(n)))
    lead = round(n / 10**exp)
    if lead == 10:
        lead, exp = 1, exp + 1
    return f"about 1 in {lead * 10**exp:,}"


def explain_finding(f: dict[str, Any]) -> list[str]:
    """Plain-words sentences explaining a finding's statistics (for non-specialists)."""
    out = []
    p = f.get("p_value")
    risk = f.get("risk")
    if isinstance(p, int | float):
        out.append(
            f"p-value {p:.2g}: if this account used the service like a typical legitimate "
            f"customer, evidence at least this strong would appear by chance with probability "
            f"{_one_in(float(p))}."
        )
    if isinstance(risk, int | float):
        out.append(
            f"Risk score {risk:.1f}: the same evidence on a logarithmic scale "
            "(-log10 of the p-value); each additional point means ten times less likely "
            "for a legitimate account."
        )
    fpr = f.get("threshold_fpr")
    if isinstance(fpr, int | float):
        out.append(
            f"The alert threshold was set on legitimate reference traffic so that about "
            f"{fpr:.2%} of legitimate accounts ({_one_in(float(fpr))}) would be flagged by "
            "mistake."
        )
    signals = f.get("signals") or {}
    for name, sig in sorted(signals.items()):
        if isinstance(sig, dict):
            what = sig.get("means") or name
            bits = []
            if isinstance(sig.get("value"), int | float):
                bits.append(f"measured {sig['value']:.3g}")
            if isinstance(sig.get("requests"), int):
                bits.append(f"in {sig['requests']} request(s)")
            if isinstance(sig.get("p_value"), int | float):
                bits.append(f"chance for a legitimate account {_one_in(float(sig['p_value']))}")
            out.append(f"Signal {name} ({what}): " + ", ".join(bits) + "." if bits
                       else f"Signal {name} ({what}).")
        else:
            out.append(f"Signal {name}: {sig}.")
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "file"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _audit_for(session: Session, case_id: str, orgs: list[str]) -> list[dict[str, Any]]:
    subjects = [case_id, *orgs]
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject_id.in_(subjects) | (AuditEntry.subject_type == "api_key"))
        .order_by(AuditEntry.seq)
    )
    out = []
    for e in rows:
        if e.subject_type == "api_key" and (e.payload or {}).get("org_id") not in orgs:
            continue
        out.append(audit.entry_dict(e))
    return out


def export_bundle(session: Session, case_id: str, out_dir: str | Path) -> Path:
    """Write the case's evidence bundle into ``out_dir`` (created; must be empty) and return
    the path of ``index.html``."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise InvalidInput(f"{out} is not empty; export each bundle into a new folder")
    case = case_ops.get_case(session, case_id)
    orgs = case_ops.case_orgs(session, case)
    (out / "attachments").mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}

    timeline: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    for e in session.scalars(
        select(CaseEntry).where(CaseEntry.case_id == case.id).order_by(CaseEntry.id)
    ):
        body = dict(e.body or {})
        digest = case_ops.entry_digest(case.id, e.id, e.kind, body, e.actor, e.at)
        if e.kind == "file":
            data = base64.b64decode(body.pop("content_b64", ""))
            rel = f"attachments/{e.id}_{_slug(str(body.get('name', 'file')))}"
            files[rel] = data
            body["path"] = rel
            attachments.append({**body, "entry_id": e.id})
        elif e.kind == "finding":
            f = dict(body.get("finding") or {})
            f["explanation"] = explain_finding(f)
            findings.append(f)
        elif e.kind == "requests":
            for r in body.get("requests") or []:
                requests.append({**r, "entry_id": e.id})
        timeline.append({"id": e.id, "kind": e.kind, "at": audit.format_ts(e.at),
                         "actor": e.actor, "body": body, "sha256": digest})

    accounts = []
    for oid in orgs:
        org = services.get_org(session, oid)
        lic = services.active_licence(session, oid)
        accounts.append({
            "organization": services.org_dict(org),
            "licence": services.licence_dict(lic) if lic else None,
            "status_history": [
                audit.jsonable({"from": c.old_status, "to": c.new_status, "at": c.at,
                                "actor": c.actor, "reason": c.reason, "case_id": c.case_id})
                for c in services.status_history(session, oid)
            ],
        })

    head = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    chain = audit.verify(session)
    doc = {
        "format": BUNDLE_FORMAT,
        "generated_at": audit.format_ts(datetime.now(UTC)),
        "generator": f"distillwarden {__version__}",
        "case": {k: v for k, v in case_ops.case_dict(session, case.id).items() if k != "timeline"},
        "accounts": accounts,
        "timeline": timeline,
        "findings": findings,
        "example_requests": requests,
        "attachments": attachments,
        "audit": {
            "entries": _audit_for(session, case.id, orgs),
            "chain_head": {"seq": head[0], "hash": head[1]} if head else None,
            "chain_verified_at_export": chain.ok,
            "chain_message": chain.message,
            "how_to_verify": (
                "Each entry's hash is sha256(prev_hash + canonical JSON of the entry); "
                "`distillwarden case verify-bundle DIR` recomputes them, and the provider can "
                "show that chain_head is in its full audit log."
            ),
        },
    }
    files["case.json"] = json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True).encode()
    files["index.html"] = _env.get_template("bundle.html.j2").render(doc=doc).encode()
    for rel, data in files.items():
        (out / rel).write_bytes(data)
    manifest = {
        "format": BUNDLE_FORMAT,
        "case_id": case.id,
        "files": {rel: _sha256(data) for rel, data in sorted(files.items())},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return out / "index.html"


@dataclass
class BundleVerification:
    """Outcome of :func:`verify_bundle`: ``ok`` or the list of problems found."""

    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    audit_entries_checked: int = 0
    timeline_entries_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_bundle(directory: str | Path) -> BundleVerification:
    """Check an exported bundle's integrity without access to the provider's systems."""
    root = Path(directory)
    res = BundleVerification()
    try:
        manifest = json.loads((root / "manifest.json").read_text())
        files: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        res.problems.append(f"manifest.json missing or unreadable: {exc}")
        return res
    for rel, want in files.items():
        p = root / rel
        if not p.is_file():
            res.problems.append(f"{rel}: listed in the manifest but missing")
            continue
        if _sha256(p.read_bytes()) != want:
            res.problems.append(f"{rel}: sha256 differs from the manifest (file was changed)")
        res.files_checked += 1
    listed = set(files) | {"manifest.json"}
    for p in root.rglob("*"):
        if p.is_file() and p.relative_to(root).as_posix() not in listed:
            res.problems.append(f"{p.relative_to(root).as_posix()}: not in the manifest")
    try:
        doc = json.loads((root / "case.json").read_text())
    except (OSError, ValueError) as exc:
        res.problems.append(f"case.json unreadable: {exc}")
        return res
    recorded: dict[int, str] = {}
    for e in doc.get("audit", {}).get("entries", []):
        canonical = audit.canonical_entry(
            seq=int(e["seq"]), at=str(e["at"]), actor=str(e["actor"]), action=str(e["action"]),
            subject_type=str(e["subject_type"]), subject_id=str(e["subject_id"]),
            reason=str(e["reason"]), payload=e["payload"],
        )
        if audit.entry_hash(str(e["prev_hash"]), canonical) != e["hash"]:
            res.problems.append(f"audit entry seq {e['seq']}: content does not match its hash")
        res.audit_entries_checked += 1
        payload = e.get("payload") or {}
        if str(e["action"]).startswith("case.") and "entry_id" in payload:
            recorded[int(payload["entry_id"])] = str(payload.get("entry_sha256"))
    case_id = str(doc.get("case", {}).get("id"))
    for t in doc.get("timeline", []):
        body = dict(t["body"])
        if t["kind"] == "file":
            rel = body.pop("path", None)
            try:
                data = (root / str(rel)).read_bytes()
            except OSError:
                res.problems.append(f"timeline entry {t['id']}: attachment {rel} missing")
                continue
            body["content_b64"] = base64.b64encode(data).decode()
        digest = case_ops.entry_digest(case_id, int(t["id"]), t["kind"], body, t["actor"], t["at"])
        if digest != t.get("sha256"):
            res.problems.append(f"timeline entry {t['id']}: content does not match its digest")
        elif recorded.get(int(t["id"])) != digest:
            res.problems.append(
                f"timeline entry {t['id']}: digest is not the one recorded in the audit chain"
            )
        res.timeline_entries_checked += 1
    return res
