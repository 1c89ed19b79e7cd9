"""Detection on traffic the simulator did not make: a generalisation check.

Writes a labelled traffic log in the interchange format (``traffic.jsonl``,
``accounts.jsonl``, ``labels.jsonl``; ../shared/formats/traffic-jsonl.md) with a generator
of its own that shares no code, wording or timing model with ``distillwarden.sim``: its
products and attackers, their phrasings (reasoning requests, output formats, judge prompts
and benchmark formats are worded afresh here, none copied from the simulator's lists),
their timing (Poisson sessions and processes instead of the simulator's curves) and their
account metadata are its own. Only the raw prompt data sets are shared (the packages of
../shared/ASSETS.md, read through ``distillwarden.sim.sources.load_source``: there are no
others offline). Then it imports the log and evaluates the default detector on it through
``distillwarden evaluate --traffic``, exactly the path an independently recorded log takes,
and prints, beside the harness's report, the benign false-positive rate of each product.

    python bench/detect/foreign_traffic.py --out /tmp/dw/foreign

The detector is fitted on a hash split of the benign accounts (no ``split`` field: a
foreign recorder does not say which accounts are reference), 20% of them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, tzinfo=UTC)

# ----------------------------------------------------------------------------- wording
# Written for this check; none of these phrasings appears in distillwarden.sim.
REASONING_ASKS = (
    "Before the final reply, lay out every intermediate consideration in order.",
    "Go through your logic one stage at a time and only then conclude.",
    "Narrate how you arrive at the result, including the parts you discard.",
    "I want the full derivation, not just the conclusion.",
    "Write out your internal deliberation first, then the answer on its own line.",
    "Please expose each inference you make along the way.",
    "Explain your thinking in detail before answering.",
    "Reason it out thoroughly, then give the result.",
)
RECORD_ASKS = (
    'Reply only with a JSON object holding the keys "prompt" and "completion".',
    "Format the exchange as one training record: instruction, input, output.",
    'Return {"question": ..., "ideal_answer": ...} and nothing else.',
    "Give the answer as a single line of JSONL suitable for fine-tuning.",
)
JUDGE_TEMPLATES = (
    "A user asked:\n{q}\n\nCandidate 1:\n{a}\n\nCandidate 2:\n{b}\n\nWhich candidate would a "
    "careful reviewer prefer? Start your reply with 1 or 2, then justify briefly.",
    "Rate the two replies below to the same request on a 1-10 scale each.\n\nRequest: {q}"
    "\n\nReply X: {a}\n\nReply Y: {b}",
    "Here is a question and two answers. Decide which answer is more accurate and "
    "helpful.\nQ: {q}\nAnswer one: {a}\nAnswer two: {b}\nVerdict:",
)
BENCH_FORMATS = (
    "Q: {q}\n{options}\nRespond with the letter only.",
    "{q}\n\n{options}\n\nAnswer:",
    "Multiple choice. {q}\nOptions:\n{options}\nThe correct option is",
)
MATH_FORMATS = (
    "Solve: {q}\nGive the final number after ####.",
    "{q}\nAnswer with just the number.",
    "Problem: {q}\nSolution:",
)
CODE_FORMATS = (
    "Complete the function below. Return only code.\n\n{q}",
    "{q}",
)
FOLLOW_UPS = (
    "Can you elaborate on the second point?", "Shorter, please.", "Give me an example.",
    "Why is that?", "Thanks! And what about the opposite case?", "Could you rephrase that?",
    "ok, now make it more formal", "What would you change if the budget were halved?",
)
TUTOR_WRAPS = (
    "I'm stuck on this one, could you help me see how to solve it? {q}",
    "my homework: {q}",
    "{q} - I don't understand where to start",
    "Could you check my understanding? {q}",
)
EDIT_ASKS = ("Make it punchier.", "Cut it to half the length.", "Use a warmer tone.",
             "Add a closing paragraph.", "Fix any grammar problems.")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari",
    "okhttp/4.12.0", "axios/1.7.2", "node-fetch/3.3", "Go-http-client/2.0", "curl/8.5.0",
    "python-requests/2.32.3", "openai-python/1.54.0", "langchain/0.3.1", "Java/21.0.2",
)
REGIONS = ("US", "DE", "GB", "FR", "JP", "BR", "IN", "SG", "CA", "AU")


# ----------------------------------------------------------------------------- data
@dataclass
class Data:
    """The raw prompt sets, shared with the simulator only as data."""

    chat: list[str]
    writing: list[str]
    health: list[str]
    instruct: list[str]
    pairs: list[tuple[str, str, str]]
    mcq: list[tuple[str, list[str]]]
    math: list[str]
    code: list[str]
    answers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Data:
        from distillwarden.sim.sources import load_source

        def texts(name: str) -> list[str]:
            return [i.text for i in load_source(name)]

        answers = {i.text: i.answer for n in ("alpaca_eval", "arena_hard", "healthbench")
                   for i in load_source(n) if i.answer}
        pairs = []
        for it in load_source("arena_hard_pairs"):
            other = dict(it.meta).get("answer_b")
            if it.answer and other:
                pairs.append((it.text, it.answer, other))
        mcq = [(i.text, [v for k, v in i.meta if k.startswith("option_")])
               for i in load_source("mmlu")]
        return cls(
            chat=texts("alpaca_eval") + texts("arena_hard"),
            writing=texts("writingbench"), health=texts("healthbench"),
            instruct=texts("ifeval") + texts("ifbench"), pairs=pairs, mcq=mcq,
            math=texts("gsm8k"), code=texts("humaneval"), answers=answers,
        )


# ----------------------------------------------------------------------------- timing
def human_times(rng: np.random.Generator, days: int, per_day: float, tz: int,
                turns: float = 3.0) -> Iterator[float]:
    """Seconds since START: sessions in the account's waking hours, a few turns each."""
    for d in range(days):
        for _ in range(rng.poisson(max(per_day, 0.1) / turns)):
            t = d * 86400 + (rng.uniform(8, 23) - tz) * 3600
            for _k in range(int(rng.geometric(1 / turns))):
                yield t
                t += rng.lognormal(np.log(70), 0.8)


def poisson_times(rng: np.random.Generator, days: int, per_day: float,
                  hours: tuple[float, float] = (0, 24)) -> Iterator[float]:
    """A Poisson process inside daily working hours (a service calling on demand)."""
    span = (hours[1] - hours[0]) * 3600
    for d in range(days):
        n = rng.poisson(per_day)
        for t in np.sort(rng.uniform(0, span, n)):
            yield d * 86400 + hours[0] * 3600 + float(t)


def run_times(rng: np.random.Generator, days: int, per_day: float,
              run_len: int = 200) -> Iterator[float]:
    """Scripted runs: a batch of requests at a steady pace, a few times a day."""
    runs = max(1, int(round(per_day / run_len)))
    for d in range(days):
        for _ in range(runs):
            t = d * 86400 + rng.uniform(0, 86400 - 3600)
            gap = rng.uniform(0.5, 4.0)
            for _k in range(int(rng.integers(run_len // 2, run_len * 3 // 2))):
                yield t
                t += gap * rng.uniform(0.9, 1.1)


# ----------------------------------------------------------------------------- requests
Msg = list[dict[str, str]]


@dataclass
class Account:
    org: str
    persona: str
    label: str
    strategy: str | None
    cluster: str | None
    licence: str
    channel: str
    region: str
    created: datetime
    ips: list[str]
    uas: list[str]
    times: Iterator[float]
    make: Callable[[np.random.Generator], tuple[Msg, dict[str, Any], int]]
    attacker_fraction: float | None = None


def pick(rng: np.random.Generator, xs: Any) -> Any:
    return xs[int(rng.integers(len(xs)))]


def ip(rng: np.random.Generator, net: tuple[int, int, int] | None = None) -> str:
    a, b, c = net if net else (int(rng.integers(11, 223)), int(rng.integers(256)),
                               int(rng.integers(256)))
    return f"{a}.{b}.{c}.{int(rng.integers(1, 255))}"


def mcq_text(rng: np.random.Generator, data: Data) -> str:
    q, opts = pick(rng, data.mcq)
    options = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(opts))
    return str(pick(rng, BENCH_FORMATS)).format(q=q, options=options)


def bench_text(rng: np.random.Generator, data: Data) -> str:
    r = rng.random()
    if r < 0.5:
        return mcq_text(rng, data)
    if r < 0.8:
        return str(pick(rng, MATH_FORMATS)).format(q=pick(rng, data.math))
    return str(pick(rng, CODE_FORMATS)).format(q=pick(rng, data.code))


def broad_text(rng: np.random.Generator, data: Data) -> str:
    return str(pick(rng, pick(rng, (data.chat, data.writing, data.instruct, data.health))))


def with_history(rng: np.random.Generator, first: str, follow: tuple[str, ...],
                 data: Data) -> Msg:
    msgs: Msg = [{"role": "user", "content": first}]
    for _ in range(int(rng.integers(0, 3))):
        msgs += [{"role": "assistant", "content": data.answers.get(first, "Sure, here it is.")
                  [:800]}, {"role": "user", "content": str(pick(rng, follow))}]
    return msgs


def product_maker(kind: str, data: Data) -> Callable[[np.random.Generator],
                                                      tuple[Msg, dict[str, Any], int]]:
    """The request (messages, extra body, completion tokens) of one benign product."""

    def make(rng: np.random.Generator) -> tuple[Msg, dict[str, Any], int]:
        extra: dict[str, Any] = {}
        if kind == "general_chat":
            first = str(pick(rng, data.chat))
            msgs = with_history(rng, first, FOLLOW_UPS, data) if rng.random() < 0.4 else [
                {"role": "user", "content": first}]
            return msgs, extra, int(rng.integers(80, 700))
        if kind == "writer":
            first = str(pick(rng, data.writing))
            return with_history(rng, first, EDIT_ASKS, data), extra, int(rng.integers(200, 1200))
        if kind == "health":
            return [{"role": "system", "content": "You are a careful health information "
                     "assistant. Encourage seeing a clinician when in doubt."},
                    {"role": "user", "content": str(pick(rng, data.health))}], extra, int(
                rng.integers(150, 600))
        if kind == "instruct_app":
            return [{"role": "user", "content": str(pick(rng, data.instruct))}], extra, int(
                rng.integers(100, 800))
        if kind == "tutor":
            q = str(pick(rng, data.math)) if rng.random() < 0.6 else mcq_text(rng, data)
            text = str(pick(rng, TUTOR_WRAPS)).format(q=q)
            if rng.random() < 0.3:
                text += " Please go through it slowly."
            return with_history(rng, text, FOLLOW_UPS, data), extra, int(rng.integers(150, 600))
        if kind == "summariser":
            doc = str(pick(rng, data.writing + data.chat))
            return [{"role": "system", "content": "You summarise internal documents."},
                    {"role": "user", "content": "Summarize the following text in three bullet "
                     f"points.\n\n---\n{doc}\n---"}], extra, int(rng.integers(40, 160))
        if kind == "classifier":
            msg = str(pick(rng, data.chat))[:600]
            return [{"role": "user", "content": "Classify the customer message into one of "
                     "billing, technical, account, other. Reply with JSON like "
                     f'{{"category": "..."}}.\n\nMessage: {msg}'}], {"temperature": 0}, int(
                rng.integers(5, 20))
        if kind == "translation_pipeline":
            words = str(pick(rng, data.chat)).split()[:60]
            for _ in range(int(rng.integers(1, 4))):
                words.insert(int(rng.integers(len(words) + 1)),
                             str(pick(rng, ("{user_name}", "{count}", "%s", "{{date}}", "%(item)s"))))
            lang = pick(rng, ("German", "French", "Japanese", "Portuguese"))
            return [{"role": "user", "content": f"Translate into {lang}. Keep every placeholder "
                     f"exactly as written.\n\n{' '.join(words)}"}], extra, int(
                rng.integers(40, 200))
        if kind == "evaluation_lab":
            return [{"role": "user", "content": bench_text(rng, data)}], {"temperature": 0}, int(
                rng.integers(1, 300))
        if kind == "coding_assistant":
            task = str(pick(rng, data.chat))
            extra = {"tools": [{"type": "function", "function": {
                "name": "run_tests", "parameters": {"type": "object", "properties": {}}}}]
            } if rng.random() < 0.3 else {}
            return [{"role": "system", "content": "You are a coding assistant inside an IDE."},
                    {"role": "user", "content": f"In my repo: {task}"}], extra, int(
                rng.integers(100, 900))
        raise ValueError(kind)

    return make


def attack_maker(kind: str, data: Data) -> Callable[[np.random.Generator],
                                                     tuple[Msg, dict[str, Any], int]]:
    """The request of one extraction strategy (worded afresh)."""

    def make(rng: np.random.Generator) -> tuple[Msg, dict[str, Any], int]:
        if kind in ("distiller", "quiet_distiller", "hydra"):
            text = broad_text(rng, data)
            if rng.random() < 0.6:
                text += "\n\n" + str(pick(rng, REASONING_ASKS))
            return [{"role": "user", "content": text}], {"max_tokens": 4096}, int(
                rng.integers(600, 2000))
        if kind == "bench_runner":
            return [{"role": "user", "content": bench_text(rng, data)}], {"temperature": 0}, int(
                rng.integers(1, 400))
        if kind == "judge_harvester":
            q, a, b = pick(rng, data.pairs)
            text = str(pick(rng, JUDGE_TEMPLATES)).format(q=q[:1500], a=a[:1500], b=b[:1500])
            return [{"role": "user", "content": text}], {}, int(rng.integers(60, 400))
        if kind == "sft_formatter":
            text = broad_text(rng, data) + "\n\n" + str(pick(rng, RECORD_ASKS))
            return [{"role": "user", "content": text}], {}, int(rng.integers(300, 1200))
        if kind == "logprob_scraper":
            return [{"role": "user", "content": broad_text(rng, data)}], {
                "logprobs": True, "top_logprobs": int(pick(rng, (5, 10, 20))),
                "n": int(pick(rng, (1, 2, 4)))}, int(rng.integers(200, 900))
        raise ValueError(kind)

    return make


# ----------------------------------------------------------------------------- population
BENIGN = {  # product: (accounts, timing, median requests per day)
    "general_chat": (230, "human", 12), "writer": (80, "human", 8), "health": (40, "human", 6),
    "instruct_app": (50, "service", 60), "tutor": (70, "human", 10),
    "summariser": (25, "pipeline", 300), "classifier": (25, "pipeline", 400),
    "translation_pipeline": (20, "pipeline", 200), "evaluation_lab": (15, "runs", 400),
    "coding_assistant": (40, "human", 25),
}
ATTACKS = {  # strategy: (accounts, timing, median requests per day)
    "distiller": (8, "runs", 800), "quiet_distiller": (8, "human", 35),
    "bench_runner": (8, "runs", 400), "judge_harvester": (5, "service", 250),
    "sft_formatter": (5, "runs", 500), "logprob_scraper": (4, "service", 300),
}
HYDRAS = 2  # clusters of 8 accounts each
MIXERS = 8  # general-chat accounts with 10% distillation traffic


def times_for(rng: np.random.Generator, timing: str, days: int, per_day: float,
              tz: int) -> Iterator[float]:
    if timing == "human":
        return human_times(rng, days, per_day, tz)
    if timing == "service":
        return poisson_times(rng, days, per_day, hours=(6, 22))
    if timing == "pipeline":
        return poisson_times(rng, days, per_day)
    return run_times(rng, days, per_day)


def population(rng: np.random.Generator, data: Data, days: int) -> list[Account]:
    accounts: list[Account] = []

    def new(persona: str, label: str, strategy: str | None, timing: str, per_day: float,
            make: Any, **kw: Any) -> Account:
        org = f"acct-{len(accounts):05d}-{rng.integers(1 << 30):08x}"
        tz = int(rng.integers(-8, 10))
        machine = timing != "human"
        licence = kw.pop("licence", "standard")
        acc = Account(
            org=org, persona=persona, label=label, strategy=strategy,
            cluster=kw.pop("cluster", None), licence=licence,
            channel=kw.pop("channel", "direct" if rng.random() < 0.8 else "reseller:north"),
            region=kw.pop("region", str(pick(rng, REGIONS))),
            created=kw.pop("created", START - timedelta(days=float(rng.uniform(5, 900)))),
            ips=kw.pop("ips", [ip(rng) for _ in range(1 if machine else int(rng.integers(1, 4)))]),
            uas=kw.pop("uas", [str(pick(rng, USER_AGENTS[5:] if machine else USER_AGENTS[:2]))]),
            times=times_for(rng, timing, days, per_day * float(rng.lognormal(0, 0.6)), tz),
            make=make, **kw)
        accounts.append(acc)
        return acc

    for persona, (n, timing, per_day) in BENIGN.items():
        for _ in range(n):
            lic = "evaluation-permitted" if persona == "evaluation_lab" else "standard"
            new(persona, "benign", None, timing, per_day, product_maker(persona, data),
                licence=lic)
    for strategy, (n, timing, per_day) in ATTACKS.items():
        for _ in range(n):
            new(strategy, "attacker", strategy, timing, per_day, attack_maker(strategy, data))
    for h in range(HYDRAS):
        net = (int(rng.integers(11, 223)), int(rng.integers(256)), int(rng.integers(256)))
        born = START - timedelta(days=float(rng.uniform(2, 30)))
        ua = str(pick(rng, USER_AGENTS[5:]))
        for _ in range(8):
            new("hydra", "attacker", "hydra", "runs", 250, attack_maker("hydra", data),
                cluster=f"hydra-{h}", channel="reseller:east",
                created=born + timedelta(hours=float(rng.uniform(0, 10))),
                ips=[ip(rng, net) for _ in range(2)], uas=[ua])
    chat, steal = product_maker("general_chat", data), attack_maker("distiller", data)
    for _ in range(MIXERS):
        def mixed(r: np.random.Generator) -> tuple[Msg, dict[str, Any], int]:
            return steal(r) if r.random() < 0.1 else chat(r)
        new("general_chat", "attacker", "mixer", "human", 60, mixed, attacker_fraction=0.1)
    return accounts


def interchange_line(rng: np.random.Generator, acc: Account, t: float) -> dict[str, Any]:
    msgs, extra, out_tokens = acc.make(rng)
    body: dict[str, Any] = {"model": "large-2", "messages": msgs, **extra}
    n = int(extra.get("n", 1))
    content = "Here is my answer. " * max(1, out_tokens // 5)
    prompt_tokens = sum(len(m["content"]) for m in msgs) // 4 + 4
    response = {
        "id": f"chatcmpl-{rng.integers(1 << 40):x}", "object": "chat.completion",
        "model": "large-2",
        "choices": [{"index": i, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"} for i in range(n)],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": out_tokens * n,
                  "total_tokens": prompt_tokens + out_tokens * n},
    }
    ts = START + timedelta(seconds=t)
    return {"ts": ts.isoformat().replace("+00:00", "Z"), "org": acc.org,
            "key": f"sk-{acc.org[-6:]}", "ip": str(pick(rng, acc.ips)),
            "user_agent": str(pick(rng, acc.uas)), "region": acc.region,
            "endpoint": "/v1/chat/completions", "request": body, "response": response,
            "status": 200, "latency_ms": round(float(rng.uniform(300, 9000)), 1)}


def write(out: Path, seed: int, days: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    data = Data.load()
    accounts = population(rng, data, days)
    rows: list[tuple[float, int]] = []
    for i, acc in enumerate(accounts):
        rows += [(t, i) for t in acc.times if 0 <= t < days * 86400]
    rows.sort()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "traffic.jsonl").open("w", encoding="utf-8") as f:
        for t, i in rows:
            f.write(json.dumps(interchange_line(rng, accounts[i], t)) + "\n")
    with (out / "accounts.jsonl").open("w", encoding="utf-8") as f:
        for a in accounts:
            f.write(json.dumps({"org": a.org, "licence": a.licence, "channel": a.channel,
                                "home_region": a.region,
                                "created": a.created.isoformat().replace("+00:00", "Z")}) + "\n")
    with (out / "labels.jsonl").open("w", encoding="utf-8") as f:
        for a in accounts:
            rec: dict[str, Any] = {"org": a.org, "label": a.label, "strategy": a.strategy,
                                   "cluster": a.cluster, "persona": a.persona}
            if a.attacker_fraction is not None:
                rec["attacker_fraction"] = a.attacker_fraction
            f.write(json.dumps(rec) + "\n")
    return {"events": len(rows), "accounts": len(accounts)}


def wording_flagged() -> dict[str, list[int]]:
    """How many of this generator's own wordings of each attack the request lexicons flag
    (flagged, wordings): whether an attack in new words is read at all."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from distillwarden.detect.lexmatch import match_lexicons

    kinds = {
        "f_cot": list(REASONING_ASKS),
        "f_dataset": list(RECORD_ASKS),
        "f_judge": [t.format(q="a question", a="one answer", b="another answer")
                    for t in JUDGE_TEMPLATES],
    }
    out = {}
    for flag, texts in kinds.items():
        hits = match_lexicons(pc.utf8_lower(pa.array(texts)))[flag]
        out[flag] = [int(hits.sum()), len(texts)]
    return out


class _Recording:
    """Wraps a detector and keeps the scores of its first ``decision_function`` call (the
    harness's scoring of every account; later calls score attackers' prefixes)."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.required_columns = detector.required_columns
        self.scores: dict[str, float] | None = None

    def fit(self, events: Any, accounts: Any = None) -> _Recording:
        self.detector.fit(events, accounts)
        return self

    def clusters(self, events: Any, accounts: Any = None) -> dict[str, str]:
        out: dict[str, str] = self.detector.clusters(events, accounts)
        return out

    def decision_function(self, events: Any, accounts: Any = None) -> dict[str, float]:
        out: dict[str, float] = self.detector.decision_function(events, accounts)
        if self.scores is None:
            self.scores = dict(out)
        return out


def per_product(scores: dict[str, float], labels: dict[str, dict[str, Any]],
                test_benign: list[str], thresholds: list[dict[str, Any]]) -> dict[str, Any]:
    """Flagged / all held-out benign accounts of each product at each threshold."""
    out: dict[str, Any] = {}
    for thr in thresholds:
        key = f"{thr['fpr']:g}"
        for org in test_benign:
            row = out.setdefault(labels[org]["persona"] or "?", {}).setdefault(key, [0, 0])
            row[0] += int(scores.get(org, float("-inf")) > thr["value"])
            row[1] += 1
    return out


def evaluate_log(log: Path, *, label: str, reports: Path, report_name: str,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Import an interchange log (``traffic.jsonl``, ``accounts.jsonl``, ``labels.jsonl`` in
    ``log``) as ``distillwarden evaluate --traffic`` does, evaluate the default detector
    (no embeddings) on it with the harness; write the harness's report to
    ``reports/<report_name>.html|json`` and return the summary."""
    from distillwarden.detect.scoring import DistillationDetector
    from distillwarden.evaluate.harness import evaluate
    from distillwarden.evaluate.report import render_html
    from distillwarden.evaluate.splits import split_accounts
    from distillwarden.events.importers import import_dataset

    with (log / "traffic.jsonl").open("rb") as fh:
        n_events = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 24), b""))
    n_accounts = len((log / "labels.jsonl").read_text().splitlines())
    dataset = log / "imported"
    if not (dataset / "labels.jsonl").exists():
        accounts = log / "accounts.jsonl"
        imported = import_dataset(log / "traffic.jsonl", dataset, label.encode(),
                                  accounts_path=accounts if accounts.exists() else None,
                                  labels_path=log / "labels.jsonl")
        print(imported.summary(), file=sys.stderr)
    rec = _Recording(DistillationDetector(use_embeddings=False))
    report = evaluate({"distillwarden": rec}, dataset, fprs=(0.001, 0.01),
                      progress=lambda m: print(m, file=sys.stderr, flush=True))
    full = report.as_dict()
    labels = {json.loads(x)["org"]: json.loads(x)
              for x in (dataset / "labels.jsonl").read_text().splitlines()}
    split = split_accounts(labels)
    det = full["detectors"][0]
    result = {
        "generator": {**(extra or {}), "events": n_events, "accounts": n_accounts},
        "split": full["split"], "attackers": full["attackers"],
        "roc_auc": det["roc_auc"], "tpr": det["tpr"], "tpr_pure": det["tpr_pure"],
        "tpr_hydra": det["tpr_hydra"], "benign_fpr": det["benign_fpr"],
        "tpr_by_strategy": det["tpr_by_strategy"], "cluster_ari": det["cluster_ari"],
        "detection_delay": {k: {"median_queries": v["median_queries"]}
                            for k, v in det["detection_delay"].items()},
        "thresholds": det["thresholds"],
        "benign_flagged_by_product": per_product(rec.scores or {}, labels, split.test_benign,
                                                 det["thresholds"]),
    }
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{report_name}.json").write_text(
        json.dumps(report.as_dict(with_curves=True), indent=1, default=str))
    (reports / f"{report_name}.html").write_text(render_html(report), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("/tmp/distillwarden-foreign"))
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--result", type=Path, default=ROOT / "bench/results/detection_foreign.json")
    ap.add_argument("--reports", type=Path, default=ROOT / "docs/reports")
    args = ap.parse_args(argv)
    if not (args.out / "labels.jsonl").exists():
        print(f"writing foreign traffic to {args.out}", file=sys.stderr, flush=True)
        write(args.out, args.seed, args.days)
    result = evaluate_log(args.out, label="foreign-check", reports=args.reports,
                          report_name="foreign",
                          extra={"seed": args.seed, "days": args.days})
    result["wording_flagged"] = wording_flagged()
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
