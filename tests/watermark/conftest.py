"""Fixtures for the watermark tests."""

from __future__ import annotations

import numpy as np
import pytest

from .synthetic import TinyTokenizer


@pytest.fixture
def tiny_tokenizer() -> TinyTokenizer:
    return TinyTokenizer([f"w{i}" for i in range(500)])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
