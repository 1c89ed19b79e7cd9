"""Suspect-model audit (DESIGN.md, part ``forensics``): did a rival model learn from our
accounts' outputs?

:func:`run_audit` prompts a suspect endpoint (or reads a corpus of its output) and runs the
radioactivity test (:func:`radioactivity_test`), canary recall, and identity and fingerprint
probes against our model; :func:`write_report` writes the evidence as JSON and HTML.
"""

from __future__ import annotations

from .audit import AuditOptions, AuditReport, run_audit
from .canaries import Canary, canary_recall, keyed_canary_recall, read_canaries
from .probes import probe_test, similarity
from .radioactivity import RadioactivityResult, radioactivity_test
from .reference import LocalReference
from .report import render_html, write_report
from .suspect import CorpusSuspect, EndpointSuspect, ForensicsError

__all__ = [
    "AuditOptions",
    "AuditReport",
    "Canary",
    "CorpusSuspect",
    "EndpointSuspect",
    "ForensicsError",
    "LocalReference",
    "RadioactivityResult",
    "canary_recall",
    "keyed_canary_recall",
    "probe_test",
    "radioactivity_test",
    "read_canaries",
    "render_html",
    "run_audit",
    "similarity",
    "write_report",
]
