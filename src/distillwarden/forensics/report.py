"""Write the audit's evidence report: ``audit.json`` (machine-readable, complete) and
``audit.html`` (one self-contained page: no scripts, no external assets, prints well)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from .audit import AuditReport

__all__ = ["render_html", "write_report"]

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Suspect-model audit: {{ r.suspect }}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d232a}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccd}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid #ccd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f4f7}.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:.6rem 1rem;border-radius:4px;font-weight:600}
.evidence_found{background:#fde8e8;border:1px solid #e0a0a0}.no_significant_evidence{background:#eef5ee;border:1px solid #9c9}
pre{white-space:pre-wrap;background:#f7f7f9;padding:.5rem;border:1px solid #e2e2ea;font-size:.85rem}
.muted{color:#667}.sig{font-weight:600;color:#a11}
</style></head><body>
<h1>Suspect-model audit</h1>
<p><b>Suspect:</b> {{ r.suspect }} ({{ r.mode }})<br>
<b>Run:</b> {{ r.started }} to {{ r.finished }} · distillwarden {{ d.distillwarden_version }}<br>
<b>Significance level α:</b> {{ d.options.alpha }} · <b>candidate accounts:</b> {{ d.candidate_accounts }}</p>
<div class="verdict {{ r.verdict }}">{% if r.findings %}Evidence found{% else %}No significant evidence{% endif %}</div>
{% if r.findings %}<ul>{% for f in r.findings %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}

<h2>1. Radioactivity (watermark signal in the suspect's output)</h2>
{% set ra = d.radioactivity %}
{% if ra %}
<p>Method: the suspect's texts are re-tokenised with our tokenizer; every distinct (context
window of {{ d.watermark_config.context_width }} tokens, next token) pair is scored once across the
whole corpus, windows from our prompts are excluded, and the number of pairs in each account's
green list (γ = {{ '%.4f' % ra.gamma }}) is compared with its exact binomial null
(Sander et al. 2024, "Watermarking makes language models radioactive").</p>
<table><tr><th>texts</th><th>tokens</th><th>scored pairs</th><th>pooled green / trials (all keys)</th><th>pooled log10 p</th></tr>
<tr><td class="num">{{ ra.texts }}</td><td class="num">{{ ra.total_tokens }}</td><td class="num">{{ ra.scored_pairs }}</td>
<td class="num">{{ ra.pooled.green }} / {{ ra.pooled.trials }}</td>
<td class="num {% if ra.pooled.significant %}sig{% endif %}">{{ fmt(ra.pooled.log10_p) }}</td></tr></table>
<table><tr><th>account</th><th>green pairs</th><th>green rate</th><th>log10 p</th><th>log10 p (Holm)</th><th>attributed</th></tr>
{% for a in ra.accounts[:20] %}<tr><td>{{ a.account }}</td><td class="num">{{ a.green }}</td><td class="num">{{ '%.4f' % a.green_rate }}</td>
<td class="num">{{ fmt(a.log10_p) }}</td><td class="num {% if a.significant %}sig{% endif %}">{{ fmt(a.log10_p_holm) }}</td><td>{{ 'yes' if a.significant else 'no' }}</td></tr>{% endfor %}
</table>{% if ra.accounts|length > 20 %}<p class="muted">{{ ra.accounts|length - 20 }} more accounts in audit.json.</p>{% endif %}
{% if ra.examples %}<p>Texts with the strongest signal for {{ ra.examples[0].account }}:</p>
{% for e in ra.examples %}<p class="muted">text {{ e.index }}: {{ e.green }}/{{ e.scored_pairs }} green, log10 p = {{ fmt(e.log10_p) }}</p><pre>{{ e.excerpt }}</pre>{% endfor %}{% endif %}
{% else %}<p class="muted">Skipped.</p>{% endif %}

<h2>2. Canary recall (listed canaries)</h2>
{% set ca = d.canaries %}
{% if ca %}
<p>{{ ca.recalled }} of {{ ca.canaries }} planted canaries found in {{ ca.texts_searched }} texts
(recall {{ '%.2f' % ca.recall }}); {{ ca.decoy_hits }} of {{ ca.decoys }} decoys found.
{% if ca.p_value is not none %}One-sided Fisher exact test, canaries vs decoys: p = {{ '%.3g' % ca.p_value }}.{% endif %}</p>
{% if ca.hits %}<table><tr><th>account</th><th>canary</th><th>match</th><th>excerpt</th></tr>
{% for h in ca.hits %}<tr><td>{{ h.account }}</td><td>{{ h.canary }}</td><td>{{ h.kind }} ({{ '%.2f' % h.score }})</td><td>{{ h.excerpt }}</td></tr>{% endfor %}</table>{% endif %}
{% else %}<p class="muted">Skipped: {{ d.skipped.get('canaries', '') }}</p>{% endif %}

<h2>2b. Keyed canaries</h2>
{% set kc = d.keyed_canaries %}
{% if kc %}
<p>{% if kc.mode == 'questions' %}Each candidate account's invented facts (derived from its key) were asked of
the suspect; a right four-digit answer has chance 1/9000, so the p-value is an exact binomial
tail, Holm-adjusted over accounts.{% else %}The corpus was searched for each account's invented facts
(subject and value together).{% endif %}</p>
<table><tr><th>account</th><th>recalled / asked</th><th>log10 p</th><th>log10 p (Holm)</th><th>example</th></tr>
{% for a in kc.accounts[:20] %}<tr><td>{{ a.account }}</td><td class="num">{{ a.recalled }} / {{ a.asked }}</td>
<td class="num">{{ fmt(a.log10_p) }}</td><td class="num {% if a.significant %}sig{% endif %}">{{ fmt(a.log10_p_holm) }}</td>
<td>{% if a.hits %}{{ a.hits[0].canary }} → {{ a.hits[0].answer }}{% endif %}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">Skipped: {{ d.skipped.get('keyed_canaries', '') }}</p>{% endif %}

{% for key, title in [('identity', '3. Identity probes'), ('fingerprint', '4. Fingerprint probes')] %}
<h2>{{ title }}</h2>
{% set pr = d[key] %}
{% if pr %}
<p>Mean similarity of the suspect's greedy answers to ours, prompt by prompt:
<b>{{ '%.3f' % pr.matched_similarity }}</b>; with answers matched to other prompts (the null):
{{ '%.3f' % pr.null_similarity_mean }} ± {{ '%.3f' % pr.null_similarity_sd }}.
Permutation p = <span class="{% if pr.p_value <= d.options.alpha %}sig{% endif %}">{{ '%.3g' % pr.p_value }}</span>
({{ pr.permutations }} permutations); {{ pr.exact_matches }} of {{ pr.probes }} answers identical.</p>
{% if pr.suspect_identities or pr.reference_identities %}<p>Model families named — suspect: {{ pr.suspect_identities or 'none' }}; ours: {{ pr.reference_identities or 'none' }}.</p>{% endif %}
<table><tr><th>prompt</th><th>suspect</th><th>our model</th><th>similarity</th></tr>
{% for a in pr.answers %}<tr><td>{{ a.prompt }}</td><td>{{ a.suspect }}</td><td>{{ a.reference }}</td><td class="num">{{ '%.2f' % a.similarity }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">Skipped: {{ d.skipped.get(key, '') }}</p>{% endif %}
{% endfor %}

<h2>Watermark configuration</h2>
<pre>{{ config_json }}</pre>
<h2>Limits of this evidence</h2>
<ul>{% for l in d.limits %}<li>{{ l }}</li>{% endfor %}</ul>
<p class="muted">audit.json SHA-256: {{ json_sha256 }}</p>
</body></html>
"""


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "−∞" if value < 0 else "∞"
    return f"{value:.2f}"


def render_html(report: AuditReport, json_sha256: str = "") -> str:
    """The self-contained HTML page for ``report``."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_TEMPLATE)
    d = report.to_dict()
    config = {k: v for k, v in d["watermark_config"].items() if k != "self_test"}
    return template.render(
        r=report,
        d=d,
        fmt=_fmt,
        config_json=json.dumps(config, indent=2, sort_keys=True),
        json_sha256=json_sha256,
    )


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # evidence is meant to be shared; mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: AuditReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``audit.json`` and ``audit.html`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = report.to_dict()
    data = json.dumps(payload, indent=2, ensure_ascii=False, default=_jsonable).encode()
    digest = hashlib.sha256(data).hexdigest()
    json_path, html_path = out / "audit.json", out / "audit.html"
    _atomic_write(json_path, data)
    _atomic_write(html_path, render_html(report, digest).encode())
    return {"json": json_path, "html": html_path}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")
