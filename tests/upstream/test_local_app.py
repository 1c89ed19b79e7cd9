"""The local model over HTTP: OpenAI clients work unchanged, streaming agrees with the
non-streaming answer, errors are OpenAI-shaped, and the account watermark is applied."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from distillwarden.watermark import WatermarkConfig, derive_account_key, detect
from distillwarden.watermark.licence import config_for_tokenizer

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def client(local_server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_server.base_url, api_key="unused", max_retries=0)


def test_models_and_health(local_server: Any) -> None:
    models = httpx.get(local_server.base_url + "/models").json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "smollm2-135m-instruct"
    health = httpx.get(local_server.root_url + "/health").json()
    assert health["status"] == "ok" and health["watermark"] is True


def test_chat_streaming_matches_non_streaming(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    full = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=messages, temperature=0, max_tokens=24
    )
    text = full.choices[0].message.content
    assert text and "Paris" in text
    assert full.usage is not None and full.usage.completion_tokens > 0
    assert full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=messages,
        temperature=0,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage, roles = [], None, None, []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.role:
                roles.append(choice.delta.role)
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    assert roles == ["assistant"]
    assert "".join(pieces) == text
    assert finish == full.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == full.usage.completion_tokens
    assert len(pieces) > 3  # really streamed, token by token


def test_completions_n_seed_and_stop(client: openai.OpenAI) -> None:
    out = client.completions.create(
        model="smollm2-135m-instruct",
        prompt="The three primary colours are",
        max_tokens=8,
        n=2,
        seed=3,
        temperature=1.0,
    )
    again = client.completions.create(
        model="smollm2-135m-instruct",
        prompt="The three primary colours are",
        max_tokens=8,
        n=2,
        seed=3,
        temperature=1.0,
    )
    assert [c.index for c in out.choices] == [0, 1]
    assert [c.text for c in out.choices] == [c.text for c in again.choices]
    stopped = client.completions.create(
        model="smollm2-135m-instruct",
        prompt="1, 2, 3, 4,",
        max_tokens=20,
        temperature=0,
        stop=["7"],
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert "7" not in stopped.choices[0].text


def test_chat_logprobs(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=3,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    content = out.choices[0].logprobs.content
    assert content and all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in content)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6}, "max_tokens"),
    ],
)
def test_bad_requests_are_openai_shaped(local_server: Any, body: dict, param: str) -> None:
    r = httpx.post(local_server.base_url + "/chat/completions", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param and err["message"]


def test_unparsable_body_and_unknown_route(local_server: Any) -> None:
    r = httpx.post(local_server.base_url + "/chat/completions", content=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = httpx.get(local_server.base_url + "/engines")
    assert r.status_code == 404 and "/v1/chat/completions" in r.json()["error"]["message"]


def _watermarked_texts(local_server: Any, org: str, n: int, wm: dict) -> list[str]:
    headers = {"x-distillwarden-org": org, "x-distillwarden-watermark": json.dumps(wm)}
    r = httpx.post(
        local_server.base_url + "/chat/completions",
        headers=headers,
        json={
            "messages": [
                {"role": "user", "content": "Write a short story about a lighthouse keeper."}
            ],
            "max_tokens": 64,
            "temperature": 1.0,
            "n": n,
            "seed": 11,
        },
        timeout=300,
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-distillwarden-watermark-applied"].startswith("gamma=")
    return [c["message"]["content"] for c in r.json()["choices"]]


def test_account_watermark_is_detectable_for_that_account_only(
    local_server: Any, local_model: Any, master_secret: bytes
) -> None:
    wm = {"mode": "generation", "gamma": 0.25, "delta": 3.0, "context_width": 2}
    texts = _watermarked_texts(local_server, "org_alice", 2, wm)
    config: WatermarkConfig = config_for_tokenizer(local_model.tokenizer, {"delta": 3.0})
    tok = local_model.tokenizer
    right = detect(texts, config, tok, derive_account_key(master_secret, "org_alice"))
    wrong = detect(texts, config, tok, derive_account_key(master_secret, "org_bob"))
    assert right.scored_tokens > 80
    assert right.log10_p < -6, right
    assert wrong.log10_p > -2, wrong


def test_watermark_header_errors(local_server: Any) -> None:
    url = local_server.base_url + "/chat/completions"
    body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    r = httpx.post(url, json=body, headers={"x-distillwarden-watermark": "{bad"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "x-distillwarden-watermark"
    r = httpx.post(url, json=body, headers={"x-distillwarden-watermark": '{"delta": 1}'})
    assert r.status_code == 400 and "x-distillwarden-org" in r.json()["error"]["message"]
    r = httpx.post(
        url,
        json=body,
        headers={"x-distillwarden-org": "o", "x-distillwarden-watermark": '{"strength": 9}'},
    )
    assert r.status_code == 400 and "strength" in r.json()["error"]["message"]
    r = httpx.post(
        url,
        json=body,
        headers={"x-distillwarden-org": "o", "x-distillwarden-watermark": '{"enabled": false}'},
    )
    assert r.status_code == 200 and r.headers["x-distillwarden-watermark-applied"] == "none"


def test_server_without_secret_refuses_to_serve_unmarked(local_model: Any) -> None:
    from starlette.testclient import TestClient

    from distillwarden.upstream.local import create_local_app

    app = create_local_app(local_model=local_model, master_secret=None)
    with TestClient(app) as tc:
        r = tc.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
            headers={"x-distillwarden-org": "o", "x-distillwarden-watermark": "{}"},
        )
        assert r.status_code == 500
        assert "--secret-from-config" in r.json()["error"]["message"]
        ok = tc.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
        )
        assert ok.status_code == 200


def test_disconnected_non_streaming_client_stops_its_generation(
    local_server: Any, local_model: Any
) -> None:
    import time

    # greedy, so the story is the same every run and long (sampled at temperature 1, it
    # sometimes ended within the client's timeout and the client was never disconnected)
    body = {
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "max_tokens": 400,
        "temperature": 0,
    }
    with pytest.raises(httpx.TimeoutException):
        httpx.post(local_server.base_url + "/chat/completions", json=body, timeout=2.0)
    deadline = time.monotonic() + 5  # a story of up to 400 tokens takes far longer on a CPU
    while True:
        health = httpx.get(local_server.root_url + "/health").json()
        if health["active"] == 0 and health["waiting"] == 0:
            break
        assert time.monotonic() < deadline, health
        time.sleep(0.1)
