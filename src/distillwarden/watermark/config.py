"""Watermark settings as versioned JSON, account keys, and the self-test that keeps a
detector from silently answering "not watermarked" with the wrong settings.

A config names the tokenizer it was made for (name + SHA-256 of its vocabulary and its
special token ids) and carries a self-test vector: green bits for fixed (context, token) pairs under a fixed test key. A
detector recomputes them with its own code and compares fingerprints; any difference raises
:class:`WatermarkConfigMismatch`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from .greenlist import SCHEME, gamma_threshold, green_np

__all__ = [
    "CONFIG_VERSION",
    "KEY_LABEL",
    "TokenizerLike",
    "WatermarkConfig",
    "WatermarkConfigMismatch",
    "derive_account_key",
    "special_token_ids",
    "tokenizer_fingerprint",
]

#: Version history: 1 = green-list bias on every token; 2 = adds ``length_neutral`` and
#: ``special_token_ids`` (EOS and other special tokens keep their probability). Version-1
#: JSON still loads, with ``length_neutral`` off: what its generator did.
CONFIG_VERSION = 2
_LENGTH_NEUTRAL_SINCE = 2
KEY_LABEL = b"distillwarden/watermark/account-key/v1"
_TEST_KEY = hashlib.sha256(b"distillwarden/watermark/self-test-key").digest()
_N_TEST_VECTORS = 24


class WatermarkConfigMismatch(ValueError):
    """The detector's settings, code or tokenizer differ from the ones text was marked with.

    Reported instead of "not watermarked": a mismatched detector would see chance-level
    green rates on watermarked text. Use the config JSON stored with the licence.
    """


class TokenizerLike(Protocol):
    """What detection needs from a tokenizer (any Hugging Face tokenizer fits)."""

    name_or_path: str

    def get_vocab(self) -> dict[str, int]: ...

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


def derive_account_key(master_secret: bytes, account_id: str) -> bytes:
    """The 32-byte watermark key of one account: HMAC-SHA256 under a domain-separation label,
    so that watermark keys never equal API-key or identifier hashes made with the same secret."""
    if not master_secret:
        raise ValueError("the master secret is empty; set `secret:` in the configuration")
    msg = KEY_LABEL + b"\x00" + account_id.encode("utf-8")
    return hmac.new(master_secret, msg, hashlib.sha256).digest()


def tokenizer_fingerprint(tokenizer: TokenizerLike) -> tuple[str, str, int]:
    """``(name, sha256 of the sorted vocabulary, vocabulary size)`` of a tokenizer."""
    vocab = tokenizer.get_vocab()
    h = hashlib.sha256()
    for tok, idx in sorted(vocab.items(), key=lambda kv: kv[1]):
        h.update(f"{idx}\t{tok}\n".encode("utf-8", "surrogatepass"))
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    size = max(vocab.values()) + 1 if vocab else 0
    return name, h.hexdigest(), size


def special_token_ids(tokenizer: Any) -> tuple[int, ...]:
    """Sorted ids of the tokens a tokenizer declares special (EOS, chat markers, added special
    tokens): the length-neutral processor leaves their probability alone and detection never
    scores them."""
    ids: set[int] = set()
    for i in getattr(tokenizer, "all_special_ids", None) or []:
        ids.add(int(i))
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for idx, tok in dict(added).items():
        if getattr(tok, "special", False):
            ids.add(int(idx))
    return tuple(sorted(i for i in ids if i >= 0))


def _test_pairs(context_width: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    seed = int.from_bytes(hashlib.sha256(b"dw-selftest-pairs").digest()[:8], "little")
    rng = np.random.default_rng(seed)
    windows = rng.integers(0, vocab_size, (_N_TEST_VECTORS, context_width), dtype=np.int64)
    tokens = rng.integers(0, vocab_size, _N_TEST_VECTORS, dtype=np.int64)
    return windows, tokens


def _self_test_vector(gamma: float, context_width: int, vocab_size: int) -> dict[str, Any]:
    windows, tokens = _test_pairs(context_width, vocab_size)
    bits = green_np(_TEST_KEY, windows, tokens, gamma)
    return {
        "key": _TEST_KEY.hex(),
        "pairs": [
            [w.tolist(), int(t), int(b)] for w, t, b in zip(windows, tokens, bits, strict=True)
        ],
    }


@dataclass(frozen=True)
class WatermarkConfig:
    """How a watermark is made and detected; one per licence, stored as JSON.

    ``gamma`` is the green fraction of the vocabulary, ``delta`` the logit bias added to
    green tokens, ``context_width`` (h) the number of preceding tokens that seed the green
    list. ``ignore_repeated_contexts`` masks contexts already watermarked in a sequence.
    ``length_neutral`` (version 2, default on) gives ``special_token_ids`` (EOS, end of turn
    and the other special tokens) after the bias exactly the probability they had before it,
    so the watermark does not change when generation stops; detection never scores them.
    """

    gamma: float = 0.25
    delta: float = 2.0
    context_width: int = 2
    vocab_size: int = 49152
    tokenizer_name: str = ""
    tokenizer_sha256: str = ""
    ignore_repeated_contexts: bool = True
    length_neutral: bool = True
    special_token_ids: tuple[int, ...] = ()
    scheme: str = SCHEME
    version: int = CONFIG_VERSION
    self_test: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        gamma_threshold(self.gamma)
        if not (0.0 <= self.delta <= 50.0 and math.isfinite(self.delta)):
            raise ValueError(f"delta must be a finite logit bias in [0, 50], got {self.delta}")
        if not 1 <= self.context_width <= 16:
            raise ValueError(f"context_width must be 1..16 tokens, got {self.context_width}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {self.vocab_size}")
        special = tuple(sorted({int(i) for i in self.special_token_ids}))
        if special and not 0 <= special[0] <= special[-1] < self.vocab_size:
            raise ValueError(
                f"special_token_ids must lie in [0, vocab_size={self.vocab_size}), got {special}"
            )
        object.__setattr__(self, "special_token_ids", special)
        if self.length_neutral and self.version < _LENGTH_NEUTRAL_SINCE:
            raise ValueError(
                f"length_neutral needs watermark config version {_LENGTH_NEUTRAL_SINCE} "
                f"(this config is version {self.version})"
            )
        if not self.self_test:
            vec = _self_test_vector(self.gamma, self.context_width, self.vocab_size)
            object.__setattr__(self, "self_test", vec)

    @classmethod
    def for_tokenizer(cls, tokenizer: TokenizerLike, **settings: Any) -> WatermarkConfig:
        """A config bound to ``tokenizer`` (name, vocabulary hash, size and special token
        ids filled in)."""
        name, digest, size = tokenizer_fingerprint(tokenizer)
        settings.setdefault("special_token_ids", special_token_ids(tokenizer))
        return cls(tokenizer_name=name, tokenizer_sha256=digest, vocab_size=size, **settings)

    def with_settings(self, settings: Mapping[str, Any] | None) -> WatermarkConfig:
        """This config with a licence's strength settings (gamma, delta, context_width,
        ignore_repeated_contexts, length_neutral) applied; unknown names raise with the
        allowed ones."""
        allowed = {"gamma", "delta", "context_width", "ignore_repeated_contexts", "length_neutral"}
        settings = dict(settings or {})
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(
                f"unknown watermark settings {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        return replace(self, self_test={}, **settings)

    @property
    def green_rate(self) -> float:
        """The exact probability that an unwatermarked (context, token) pair is green."""
        return gamma_threshold(self.gamma) / float(1 << 32)

    @property
    def expected_watermarked_green_rate(self) -> float:
        """A planning figure for text of moderate entropy: halfway between ``gamma`` and the
        full-entropy rate γe^δ / (γe^δ + 1 − γ). Used only to say how many tokens are needed."""
        g, e = self.green_rate, math.exp(self.delta)
        full = g * e / (g * e + 1.0 - g)
        return g + 0.5 * (full - g)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["self_test"] = dict(self.self_test)
        d["special_token_ids"] = list(self.special_token_ids)
        return d

    def to_json(self) -> str:
        """Versioned JSON, stable key order."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WatermarkConfig:
        """Parse a config dict; a newer version or an unknown field raises a clear error.
        Version-1 configs (written before ``length_neutral`` existed) load with it off."""
        data = dict(data)
        version = data.get("version", CONFIG_VERSION)
        if not isinstance(version, int) or version > CONFIG_VERSION:
            raise WatermarkConfigMismatch(
                f"watermark config version {version!r} is newer than this distillwarden "
                f"understands ({CONFIG_VERSION}); upgrade distillwarden"
            )
        names = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - names
        if unknown:
            raise WatermarkConfigMismatch(
                f"unknown watermark config fields {sorted(unknown)}; expected {sorted(names)}"
            )
        if version < _LENGTH_NEUTRAL_SINCE:
            data.setdefault("length_neutral", False)
        data["version"] = version
        if "special_token_ids" in data:
            ids = data["special_token_ids"]
            if not isinstance(ids, list | tuple) or not all(isinstance(i, int) for i in ids):
                raise WatermarkConfigMismatch("special_token_ids must be a list of token ids")
            data["special_token_ids"] = tuple(ids)
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise WatermarkConfigMismatch(f"invalid watermark config: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> WatermarkConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WatermarkConfigMismatch(f"watermark config is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise WatermarkConfigMismatch("watermark config JSON must be an object")
        return cls.from_dict(data)

    def check(self, tokenizer: TokenizerLike | None = None) -> None:
        """Fail loudly unless this code reproduces the self-test vector and ``tokenizer``
        (when given) is the one the config was made for."""
        if self.scheme != SCHEME:
            raise WatermarkConfigMismatch(
                f"config uses green-list scheme {self.scheme!r}, this detector implements "
                f"{SCHEME!r}; use a distillwarden version that supports it"
            )
        vec = self.self_test
        try:
            key = bytes.fromhex(str(vec["key"]))
            pairs = list(vec["pairs"])
            windows = np.array([p[0] for p in pairs], dtype=np.int64)
            tokens = np.array([p[1] for p in pairs], dtype=np.int64)
            expected = np.array([p[2] for p in pairs], dtype=bool)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise WatermarkConfigMismatch(f"config self-test vector is malformed: {exc}") from exc
        if windows.ndim != 2 or windows.shape[1] != self.context_width:
            raise WatermarkConfigMismatch(
                f"self-test windows have width {windows.shape[-1] if windows.ndim else 0}, "
                f"config says context_width={self.context_width}"
            )
        got = green_np(key, windows, tokens, self.gamma)
        if not np.array_equal(got, expected):
            bad = int((got != expected).sum())
            raise WatermarkConfigMismatch(
                f"self-test failed on {bad}/{len(expected)} pairs: this config's gamma/context "
                f"or hashing differ from the ones the text was watermarked with"
            )
        if tokenizer is not None:
            name, digest, size = tokenizer_fingerprint(tokenizer)
            if self.tokenizer_sha256 and digest != self.tokenizer_sha256:
                raise WatermarkConfigMismatch(
                    f"tokenizer {name!r} (vocab sha256 {digest[:12]}…) is not the one this "
                    f"watermark was made with ({self.tokenizer_name!r}, "
                    f"{self.tokenizer_sha256[:12]}…); pass the model's own tokenizer"
                )
            if size > self.vocab_size:
                raise WatermarkConfigMismatch(
                    f"tokenizer {name!r} has {size} ids but the config's vocab_size is "
                    f"{self.vocab_size}"
                )
