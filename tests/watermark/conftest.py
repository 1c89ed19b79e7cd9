"""Fixtures for the watermark tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from .synthetic import TinyTokenizer


@pytest.fixture
def tiny_tokenizer() -> TinyTokenizer:
    return TinyTokenizer([f"w{i}" for i in range(500)])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread() -> Iterator[None]:
    """The tensors here are small: one thread avoids intra-op hand-offs on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
