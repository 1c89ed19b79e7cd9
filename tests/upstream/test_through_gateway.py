"""The embedded default end to end: client → gateway → local model, with the account's
licence watermark applied by the model and detectable for that account only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from distillwarden.config import Settings, load_settings
from distillwarden.gateway.app import create_app
from distillwarden.store import services
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.migrate import upgrade_database
from distillwarden.upstream.local import create_local_app
from distillwarden.upstream.server import BackgroundServer, free_port
from distillwarden.watermark import derive_account_key, detect
from distillwarden.watermark.licence import config_for_tokenizer

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, local_model: Any) -> Iterator[dict[str, Any]]:
    data_dir: Path = tmp_path_factory.mktemp("gw-local")
    upstream_port = free_port()
    settings: Settings = load_settings(
        None,
        data_dir=data_dir,
        secret="gateway-local-model-secret",
        port=free_port(),
        upstreams=[{"name": "local", "base_url": f"http://127.0.0.1:{upstream_port}/v1"}],
        models=[
            {"name": "smollm2", "upstream": "local", "upstream_model": "smollm2-135m-instruct"}
        ],
    )
    upgrade_database(settings.effective_database_url)
    model_app = create_local_app(master_secret=settings.secret_bytes(), local_model=local_model)
    gateway_app = create_app(settings)
    with (
        BackgroundServer(model_app, port=upstream_port),
        BackgroundServer(gateway_app, port=settings.port),
    ):
        sessions = make_sessionmaker(make_engine(settings.effective_database_url))
        keys: dict[str, str] = {}
        with session_scope(sessions) as s:
            for org, wm in (
                ("org_marked", {"mode": "generation", "delta": 3.0}),
                ("org_plain", None),
            ):
                services.create_org(s, name=org, org_id=org, actor="test")
                services.set_licence(s, org, watermark=wm, actor="test", reason="test")
                _, keys[org] = services.create_api_key(
                    s, settings.secret_bytes(), org, actor="test"
                )
        deadline = time.monotonic() + 15
        while any(gateway_app.cache.lookup(k) is None for k in keys.values()):
            assert time.monotonic() < deadline, "the gateway never saw the new keys"
            time.sleep(0.05)
        yield {"settings": settings, "url": f"http://127.0.0.1:{settings.port}/v1", "keys": keys}


def _answers(stack: dict[str, Any], org: str) -> list[str]:
    client = openai.OpenAI(
        base_url=stack["url"], api_key=stack["keys"][org], max_retries=0, timeout=300
    )
    texts = []
    for prompt in ("Write a short story about a lighthouse keeper.", "Explain how rain forms."):
        stream = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=50,
            temperature=1.0,
            seed=3,
            stream=True,
        )
        texts.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    return texts


def test_licence_watermark_reaches_the_model_through_the_gateway(
    stack: dict[str, Any], local_model: Any
) -> None:
    secret = stack["settings"].secret_bytes()
    config = config_for_tokenizer(local_model.tokenizer, {"delta": 3.0})
    tok = local_model.tokenizer
    marked = _answers(stack, "org_marked")
    plain = _answers(stack, "org_plain")
    assert all(marked) and all(plain)
    own = detect(marked, config, tok, derive_account_key(secret, "org_marked"))
    other = detect(marked, config, tok, derive_account_key(secret, "org_plain"))
    unmarked = detect(plain, config, tok, derive_account_key(secret, "org_plain"))
    assert own.log10_p < -5, own
    assert other.log10_p > -2 and unmarked.log10_p > -2


def test_models_listed_through_the_gateway(stack: dict[str, Any]) -> None:
    r = httpx.get(
        stack["url"] + "/models", headers={"authorization": f"Bearer {stack['keys']['org_plain']}"}
    )
    assert r.status_code == 200 and "smollm2" in {m["id"] for m in r.json()["data"]}
