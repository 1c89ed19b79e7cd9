"""Pass-through: what the upstream receives and what the client gets back."""

from __future__ import annotations

import orjson

from .conftest import Account, Harness
from .fake_upstream import ANSWER, streamed_text


def test_non_streaming_chat_passes_through(gateway: Harness, acct: Account) -> None:
    r = gateway.chat(acct)
    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["message"]["content"] == ANSWER
    assert body["usage"]["total_tokens"] == 16
    assert r.headers["x-request-id"].startswith("evt_")


def test_upstream_gets_org_header_and_its_own_key_not_the_clients(
    gateway: Harness, acct: Account
) -> None:
    r = gateway.chat(acct)
    assert r.status_code == 200
    seen = gateway.upstream.seen[-1]
    assert seen.headers["authorization"] == "Bearer sk-upstream-secret"
    assert acct.key not in str(seen.headers)
    assert seen.headers["x-distillwarden-org"] == acct.org_id
    assert "x-distillwarden-watermark" not in seen.headers
    assert seen.headers["x-request-id"] == r.headers["x-request-id"]


def test_body_forwarded_untouched_including_n_logprobs_tools(
    gateway: Harness, acct: Account
) -> None:
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "x"}],
        "n": 3,
        "logprobs": True,
        "top_logprobs": 5,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "seed": 7,
        "vendor_extension": {"keep": ["me"]},
    }
    raw = orjson.dumps(body)
    r = gateway.http.post(
        "/v1/chat/completions",
        content=raw,
        headers={**gateway.headers(acct), "content-type": "application/json"},
    )
    assert r.status_code == 200
    assert len(r.json()["choices"]) == 3
    assert gateway.upstream.seen[-1].body == raw


def test_route_rewrites_model_only_when_mapped(gateway: Harness, acct: Account) -> None:
    r = gateway.chat(acct, {"model": "alias-model", "messages": [{"role": "user", "content": "q"}]})
    assert r.status_code == 200
    assert gateway.upstream.seen[-1].json()["model"] == "real-name"


def test_watermark_settings_reach_the_upstream(gateway: Harness) -> None:
    wm = {"gamma": 0.25, "delta": 2.0, "enabled": True}
    acct = gateway.account(watermark=wm)
    assert gateway.chat(acct).status_code == 200
    header = gateway.upstream.seen[-1].headers["x-distillwarden-watermark"]
    assert orjson.loads(header) == wm
    assert " " not in header  # compact JSON


def test_streaming_relays_every_event_and_done(gateway: Harness, acct: Account) -> None:
    body = {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "s"}]}
    with gateway.http.stream(
        "POST", "/v1/chat/completions", json=body, headers=gateway.headers(acct)
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(r.iter_bytes())
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    deltas = [orjson.loads(e[6:]) for e in events[:-1]]
    assert len(deltas) == 22
    text = "".join(d["choices"][0]["delta"].get("content") or "" for d in deltas)
    assert text == streamed_text()


def test_completions_and_embeddings(gateway: Harness, acct: Account) -> None:
    r = gateway.http.post(
        "/v1/completions",
        json={"model": "fake-model", "prompt": "Once upon"},
        headers=gateway.headers(acct),
    )
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == ANSWER
    assert gateway.upstream.seen[-1].path == "/v1/completions"
    r = gateway.http.post(
        "/v1/embeddings",
        json={"model": "fake-model", "input": ["a", "b"]},
        headers=gateway.headers(acct),
    )
    assert r.status_code == 200 and len(r.json()["data"]) == 2
    assert gateway.upstream.seen[-1].path == "/v1/embeddings"


def test_models_lists_only_licensed_models(gateway: Harness) -> None:
    narrow = gateway.account(models=("fake-*", "alias-model"))
    r = gateway.http.get("/v1/models", headers=gateway.headers(narrow))
    assert r.status_code == 200
    assert sorted(m["id"] for m in r.json()["data"]) == ["alias-model", "fake-model"]
    r = gateway.http.get("/v1/models/alias-model", headers=gateway.headers(narrow))
    assert r.status_code == 200 and r.json()["id"] == "alias-model"
    r = gateway.http.get("/v1/models/hang-model", headers=gateway.headers(narrow))
    assert r.status_code == 404
