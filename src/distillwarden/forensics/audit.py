"""Run the suspect-model audit: radioactivity, canary recall, identity and fingerprint
probes, gathered into one :class:`AuditReport`.

With an endpoint the suspect is prompted (our prompts, its answers); with a corpus only
the corpus-level tests run (radioactivity and canary search), and the report says which
tests were skipped and why.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..watermark import WatermarkConfig
from .canaries import (
    Canary,
    CanaryResult,
    KeyedCanaryResult,
    canary_recall,
    keyed_canary_questions,
    keyed_canary_recall,
)
from .probes import ProbeResult, probe_test
from .prompts import FINGERPRINT_PROMPTS, IDENTITY_PROBES, RADIOACTIVITY_PROMPTS
from .radioactivity import RadioactivityResult, radioactivity_test
from .suspect import CorpusSuspect, EndpointSuspect, ForensicsError, Generator

__all__ = ["AuditOptions", "AuditReport", "LIMITS", "run_audit"]

Progress = Callable[[str, int, int], None]
"""``(stage, done, total)``"""

LIMITS = [
    "Radioactivity detects training on our watermarked outputs only when the suspect saw "
    "enough of them; a non-significant result is not evidence that it did not.",
    "Watermark p-values are exact binomial tails under the null that the suspect's text is "
    "independent of our secret keys; each distinct (context window, token) pair is scored "
    "once across the corpus and windows from our prompts are excluded, so repeated or "
    "templated text cannot inflate the evidence.",
    "The suspect's text is re-tokenised with our tokenizer; a different tokenizer on the "
    "suspect side weakens the signal but does not bias the p-values.",
    "Per-account p-values are Holm-adjusted over all candidate accounts; the pooled test is a "
    "separate hypothesis (the candidate accounts' outputs taken together, as from a hydra "
    "cluster) and is not adjusted with them.",
    "Probe similarity can also come from shared public training data or a common base model; "
    "the permutation test removes generic style (answers are compared with our answers to "
    "other prompts) but not a shared ancestor. Treat it as corroborating evidence.",
    "Canary recall has a p-value only when decoy canaries (never served) are supplied.",
    "An endpoint can be instructed to deny its identity or filter outputs; probes are "
    "evidence when positive, not exculpatory when negative.",
]


@dataclass
class AuditOptions:
    """What the audit sends and how it decides."""

    prompts: Sequence[str] = RADIOACTIVITY_PROMPTS
    samples_per_prompt: int = 1
    max_tokens: int = 200
    temperature: float = 0.8
    seed: int = 0
    alpha: float = 1e-3
    identity_probes: Sequence[str] = IDENTITY_PROBES
    fingerprint_prompts: Sequence[str] = FINGERPRINT_PROMPTS
    probe_max_tokens: int = 64
    permutations: int = 9999
    canaries: Sequence[Canary] = ()
    canary_samples: int = 2
    near_threshold: float = 0.85
    keyed_canaries: int = 8
    keyed_canary_max_accounts: int = 100

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompts": len(self.prompts),
            "samples_per_prompt": self.samples_per_prompt,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "alpha": self.alpha,
            "identity_probes": len(self.identity_probes),
            "fingerprint_prompts": len(self.fingerprint_prompts),
            "probe_max_tokens": self.probe_max_tokens,
            "permutations": self.permutations,
            "canaries": sum(1 for c in self.canaries if not c.decoy),
            "decoys": sum(1 for c in self.canaries if c.decoy),
            "near_threshold": self.near_threshold,
            "keyed_canaries_per_account": self.keyed_canaries,
        }


@dataclass
class AuditReport:
    """Everything the audit found, ready for :mod:`distillwarden.forensics.report`."""

    suspect: str
    mode: str  # "endpoint" or "corpus"
    started: str
    finished: str
    options: AuditOptions
    watermark_config: dict[str, Any]
    accounts: list[str]
    radioactivity: RadioactivityResult | None
    canaries: CanaryResult | None
    keyed_canaries: KeyedCanaryResult | None
    identity: ProbeResult | None
    fingerprint: ProbeResult | None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def findings(self) -> list[str]:
        """One line per test that is significant at ``alpha``."""
        alpha = self.options.alpha
        out: list[str] = []
        r = self.radioactivity
        if r is not None:
            for a in r.attributed:
                out.append(
                    f"watermark of account {a.account}: log10 p = {a.log10_p:.1f} "
                    f"(Holm-adjusted {a.log10_p_holm:.1f}) over {r.scored_pairs} scored pairs"
                )
            if r.pooled_significant:
                out.append(
                    f"watermark of the candidate accounts (pooled over {len(r.accounts)} "
                    f"keys): log10 p = {r.pooled_log10_p:.1f} over {r.scored_pairs} scored pairs"
                )
        c = self.canaries
        if c is not None and c.hits and (c.p_value is None or c.p_value <= alpha):
            pv = f", Fisher p = {c.p_value:.2g}" if c.p_value is not None else " (no decoys)"
            out.append(f"{len(c.hits)}/{c.canaries} canaries reproduced{pv}")
        k = self.keyed_canaries
        if k is not None:
            for kc in k.attributed:
                out.append(
                    f"keyed canaries of account {kc.account}: {kc.recalled}/{kc.asked} "
                    f"recalled, log10 p = {kc.log10_p or 0.0:.1f} "
                    f"(Holm-adjusted {kc.log10_p_holm or 0.0:.1f})"
                )
            if k.mode == "corpus":
                out += [
                    f"the corpus states {kc.recalled} keyed canaries of account {kc.account}"
                    for kc in k.accounts
                    if kc.recalled
                ]
        for probe in (self.identity, self.fingerprint):
            if probe is not None and probe.p_value <= alpha:
                out.append(
                    f"{probe.kind} probes answer like our model: similarity "
                    f"{probe.matched_mean:.2f} vs {probe.null_mean:.2f} by chance, "
                    f"permutation p = {probe.p_value:.2g}"
                )
        if self.identity is not None:
            ours = set(self.identity.reference_identities)
            claimed = set(self.identity.suspect_identities) & ours
            if claimed:
                out.append(f"the suspect names our model's identity: {sorted(claimed)}")
        return out

    @property
    def verdict(self) -> str:
        return "evidence_found" if self.findings else "no_significant_evidence"

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": "distillwarden suspect-model audit",
            "distillwarden_version": __version__,
            "suspect": self.suspect,
            "mode": self.mode,
            "started": self.started,
            "finished": self.finished,
            "verdict": self.verdict,
            "findings": self.findings,
            "options": self.options.to_dict(),
            "watermark_config": self.watermark_config,
            "candidate_accounts": len(self.accounts),
            "radioactivity": self.radioactivity.to_dict() if self.radioactivity else None,
            "canaries": self.canaries.to_dict() if self.canaries else None,
            "keyed_canaries": self.keyed_canaries.to_dict() if self.keyed_canaries else None,
            "identity": self.identity.to_dict() if self.identity else None,
            "fingerprint": self.fingerprint.to_dict() if self.fingerprint else None,
            "skipped": self.skipped,
            "limits": LIMITS,
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def run_audit(
    suspect: EndpointSuspect | CorpusSuspect,
    *,
    tokenizer: Any,
    keys: Mapping[str, bytes],
    config: WatermarkConfig,
    reference: Generator | None = None,
    options: AuditOptions | None = None,
    received: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit ``suspect`` for signs that it learned from our accounts' outputs.

    ``keys`` maps candidate account ids to their watermark keys; ``tokenizer`` and
    ``config`` are those of our watermarking model; ``reference`` answers the identity and
    fingerprint probes as our model does (without it, those tests are skipped);
    ``received`` (what the candidate accounts were served, e.g. from the event log) focuses
    the radioactivity test on the contexts they saw.
    """
    opts = options or AuditOptions()
    say = progress or (lambda _stage, _done, _total: None)
    started = _now()
    skipped: dict[str, str] = {}
    texts: list[str]
    prompts_used: list[str]
    identity = fingerprint = None
    extra_texts: list[str] = []
    if isinstance(suspect, CorpusSuspect):
        mode = "corpus"
        texts, prompts_used = list(suspect.texts), list(suspect.prompts)
        why = "a corpus cannot be prompted; audit an endpoint to run the probes"
        skipped["identity"] = skipped["fingerprint"] = why
        keyed = (
            keyed_canary_recall(
                dict(keys), texts=texts, count=opts.keyed_canaries, alpha=opts.alpha
            )
            if opts.keyed_canaries
            else None
        )
    else:
        mode = "endpoint"
        prompts_used = [p for p in opts.prompts for _ in range(opts.samples_per_prompt)]
        if not prompts_used:
            raise ForensicsError("no radioactivity prompts; pass --prompts with at least one")
        total = len(prompts_used)
        counter = _Counter("radioactivity: prompting the suspect", total, say)
        texts = suspect.generate(
            prompts_used,
            max_tokens=opts.max_tokens,
            temperature=opts.temperature,
            seed=opts.seed,
            progress=counter,
        )
        if reference is None:
            why = "no reference model: pass our model's endpoint or use the local model"
            skipped["identity"] = skipped["fingerprint"] = why
        else:
            identity = _probe("identity", opts.identity_probes, suspect, reference, opts, say)
            fingerprint = _probe(
                "fingerprint", opts.fingerprint_prompts, suspect, reference, opts, say
            )
            extra_texts = identity.suspect + fingerprint.suspect
        keyed = _ask_keyed_canaries(suspect, keys, opts, say, skipped)
        triggers = [c.trigger for c in opts.canaries if c.trigger]
        if triggers:
            trig = [t for t in triggers for _ in range(opts.canary_samples)]
            counter = _Counter("canaries: eliciting", len(trig), say)
            extra_texts += suspect.generate(
                trig,
                max_tokens=opts.probe_max_tokens * 2,
                temperature=0.7,
                seed=opts.seed,
                progress=counter,
            )
    say("radioactivity: scoring", 0, 1)
    radio = radioactivity_test(
        texts,
        tokenizer,
        keys,
        config,
        prompts=prompts_used or None,
        received=received,
        alpha=opts.alpha,
    )
    say("radioactivity: scoring", 1, 1)
    canaries: CanaryResult | None = None
    if opts.canaries:
        canaries = canary_recall(
            opts.canaries, texts + extra_texts, near_threshold=opts.near_threshold
        )
    else:
        skipped["canaries"] = "no canaries given (--canaries FILE)"
    return AuditReport(
        suspect=suspect.name,
        mode=mode,
        started=started,
        finished=_now(),
        options=opts,
        watermark_config=config.to_dict(),
        accounts=list(keys),
        radioactivity=radio,
        canaries=canaries,
        keyed_canaries=keyed,
        identity=identity,
        fingerprint=fingerprint,
        skipped=skipped,
    )


def _ask_keyed_canaries(
    suspect: EndpointSuspect,
    keys: Mapping[str, bytes],
    opts: AuditOptions,
    say: Progress,
    skipped: dict[str, str],
) -> KeyedCanaryResult | None:
    if not opts.keyed_canaries:
        skipped["keyed_canaries"] = "disabled"
        return None
    if len(keys) > opts.keyed_canary_max_accounts:
        skipped["keyed_canaries"] = (
            f"{len(keys)} candidate accounts would need {len(keys) * opts.keyed_canaries} "
            f"questions; narrow the candidates to at most {opts.keyed_canary_max_accounts}"
        )
        return None
    questions = keyed_canary_questions(dict(keys), opts.keyed_canaries)
    counter = _Counter("keyed canaries: asking", len(questions), say)
    answers = suspect.generate(
        [c.question for _, c in questions], max_tokens=16, temperature=0.0, progress=counter
    )
    return keyed_canary_recall(
        dict(keys), answers=answers, count=opts.keyed_canaries, alpha=opts.alpha
    )


class _Counter:
    def __init__(self, stage: str, total: int, say: Progress) -> None:
        self.stage, self.total, self.say, self.done = stage, total, say, 0
        say(stage, 0, total)

    def __call__(self, n: int) -> None:
        self.done += n
        self.say(self.stage, self.done, self.total)


def _probe(
    kind: str,
    prompts: Sequence[str],
    suspect: EndpointSuspect,
    reference: Generator,
    opts: AuditOptions,
    say: Progress,
) -> ProbeResult:
    counter = _Counter(f"{kind} probes", 2 * len(prompts), say)
    theirs = suspect.generate(
        prompts, max_tokens=opts.probe_max_tokens, temperature=0.0, progress=counter
    )
    ours = reference.generate(
        prompts, max_tokens=opts.probe_max_tokens, temperature=0.0, progress=counter
    )
    return probe_test(kind, prompts, theirs, ours, permutations=opts.permutations, seed=opts.seed)


def log10_or_none(p: float | None) -> float | None:
    """log10 of a p-value for display (None stays None)."""
    if p is None:
        return None
    return math.log10(p) if p > 0 else float("-inf")
