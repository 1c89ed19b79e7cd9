"""The official ``openai`` Python client works against the gateway unchanged."""

from __future__ import annotations

import openai
import pytest

from .conftest import Account, Harness
from .fake_upstream import ANSWER, streamed_text


@pytest.fixture(scope="module")
def client(gateway: Harness, acct: Account) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=acct.key, max_retries=0)


def test_chat(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}], n=2, logprobs=True
    )
    assert out.choices[0].message.content == ANSWER
    assert len(out.choices) == 2
    assert out.usage is not None and out.usage.total_tokens == 16


def test_chat_streaming(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == streamed_text()
    assert usage is not None and usage.completion_tokens == 20


def test_completions_embeddings_models(client: openai.OpenAI) -> None:
    assert client.completions.create(model="fake-model", prompt="x").choices[0].text == ANSWER
    emb = client.embeddings.create(model="fake-model", input=["a", "b", "c"])
    assert len(emb.data) == 3 and emb.data[0].embedding == [0.1, 0.2, 0.3]
    assert "fake-model" in {m.id for m in client.models.list()}
    assert client.models.retrieve("fake-model").id == "fake-model"


def test_errors_surface_as_sdk_exceptions(gateway: Harness, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert nf.value.code == "model_not_found"
    bad = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="sk-dw-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    suspended = gateway.account()
    gateway.set_status(suspended.org_id, "suspended")
    gateway.wait_status(suspended.org_id, "suspended")
    sc = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=suspended.key, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as pd:
        sc.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "x"}])
    assert pd.value.code == "account_suspended"
