"""The keyed green-list function, bit-identical in numpy (detection) and torch (generation).

``green(key, context window, token)`` is a keyed 64-bit hash compared with ``gamma · 2^32``.
The hash is built from the SplitMix64 finaliser (a multiply-xorshift mix) so it vectorises
over batch × vocabulary with plain integer arithmetic: no ``randperm`` per step, no
per-row Python loop, the same bits on CPU, GPU and numpy.

Scheme ``dw-mix64-v1``, with ``mix`` the SplitMix64 finaliser and ``G`` the golden ratio
constant, all arithmetic modulo 2^64::

    k_ctx, k_tok   = words of the 32-byte account key (little endian)
    token_hash(v)  = mix(k_tok ^ mix(v * G + 1))
    window_digest  = w := G; for t in window: w := mix(w ^ mix(t * G + 2))   (key-free)
    context_hash   = mix(k_ctx ^ window_digest)
    score(c, v)    = mix(c ^ token_hash(v)) >> 32                     (32-bit uniform)
    green          = score < threshold(gamma) = round(gamma * 2^32)

torch has no unsigned 64-bit arithmetic on every device, so the torch version works on
int64 (two's-complement wrap-around multiply) and emulates logical shifts with a mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "SCHEME",
    "context_hash_np",
    "context_hash_torch",
    "gamma_threshold",
    "green_count_matrix_np",
    "green_mask_np_into",
    "green_mask_torch",
    "green_np",
    "green_torch",
    "key_words",
    "score_np",
    "score_torch",
    "token_hash_np",
    "token_hash_torch",
    "token_premix_np",
    "window_digest_np",
]

SCHEME = "dw-mix64-v1"

_M64 = (1 << 64) - 1
IntArray = np.ndarray | np.integer[Any] | int
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB
_G = 0x9E3779B97F4A7C15


def _signed(x: int) -> int:
    """The int64 with the same bits as the uint64 ``x``."""
    return x - (1 << 64) if x >= 1 << 63 else x


def gamma_threshold(gamma: float) -> int:
    """The 32-bit threshold below which a score is green; exact green rate is thr / 2^32."""
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma must lie strictly between 0 and 1, got {gamma}")
    return max(1, min((1 << 32) - 1, round(gamma * (1 << 32))))


def key_words(key: bytes) -> tuple[int, int]:
    """The (context, token) 64-bit key words of an account key (at least 16 bytes)."""
    if len(key) < 16:
        raise ValueError("watermark keys must be at least 16 bytes (use derive_account_key)")
    w = [int.from_bytes(key[i : i + 8], "little") for i in range(0, len(key) - len(key) % 8, 8)]
    k_ctx, k_tok = w[0], w[1]
    for i in range(2, len(w), 2):
        k_ctx ^= w[i]
        if i + 1 < len(w):
            k_tok ^= w[i + 1]
    return k_ctx, k_tok


# ---------------------------------------------------------------------------------- numpy


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
    return z ^ (z >> np.uint64(31))


def _u64(x: IntArray) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64).view(np.uint64) if arr.dtype != np.uint64 else arr
    if arr.dtype == object:
        return np.array([int(v) & _M64 for v in arr.ravel()], dtype=np.uint64).reshape(arr.shape)
    raise TypeError(f"expected integer token ids or key words, got dtype {arr.dtype}")


def _tok_premix_np(tokens: np.ndarray, salt: int) -> np.ndarray:
    t = _u64(tokens)
    with np.errstate(over="ignore"):
        return _mix_np(t * np.uint64(_G) + np.uint64(salt))


def token_hash_np(k_tok: IntArray, tokens: np.ndarray) -> np.ndarray:
    """Keyed token hashes; ``k_tok`` and ``tokens`` broadcast against each other."""
    return _mix_np(_u64(k_tok) ^ _tok_premix_np(tokens, 1))


def window_digest_np(windows: np.ndarray) -> np.ndarray:
    """Key-free 64-bit digest of context windows ``(..., h)`` (computed once per window,
    then keyed by one mix per key in :func:`context_hash_np`)."""
    w = np.asarray(windows)
    pre = _tok_premix_np(w, 2)
    d = np.full(w.shape[:-1], _G, dtype=np.uint64)
    for i in range(w.shape[-1]):
        d = _mix_np(d ^ pre[..., i])
    return d


def context_hash_np(k_ctx: IntArray, windows: np.ndarray) -> np.ndarray:
    """Keyed hash of context windows ``(..., h)``; ``k_ctx`` broadcasts against ``...``."""
    return _mix_np(_u64(k_ctx) ^ window_digest_np(windows))


def score_np(ctx_hash: IntArray, tok_hash: IntArray) -> np.ndarray:
    """32-bit uniform scores (as uint64) of (context, token) hash pairs, broadcast."""
    return _mix_np(_u64(ctx_hash) ^ _u64(tok_hash)) >> np.uint64(32)


def green_np(key: bytes, windows: np.ndarray, tokens: np.ndarray, gamma: float) -> np.ndarray:
    """Green bits for context windows ``(n, h)`` and the tokens ``(n,)`` that follow them."""
    k_ctx, k_tok = key_words(key)
    c = context_hash_np(np.uint64(k_ctx), windows)
    t = token_hash_np(np.uint64(k_tok), tokens)
    return score_np(c, t) < np.uint64(gamma_threshold(gamma))


def _mix_inplace_np(z: np.ndarray, t: np.ndarray, final: bool = True) -> None:
    """:func:`_mix_np` in place, ``t`` a scratch array like ``z``; ``final=False`` stops
    before the last xor-shift (see :func:`green_mask_np_into` for when that is exact)."""
    np.right_shift(z, np.uint64(30), out=t)
    z ^= t
    z *= np.uint64(_C1)
    np.right_shift(z, np.uint64(27), out=t)
    z ^= t
    z *= np.uint64(_C2)
    if final:
        np.right_shift(z, np.uint64(31), out=t)
        z ^= t


def green_count_matrix_np(
    k_ctx: np.ndarray,
    k_tok: np.ndarray,
    digests: np.ndarray,
    token_premix: np.ndarray,
    threshold: int,
    *,
    block: int = 1 << 16,
) -> np.ndarray:
    """Green counts for each key (``k_ctx``/``k_tok`` of shape ``(K,)``) over the same pairs
    (window digests and token premixes, ``(m,)``): the detector's hot loop, in place and in
    cache-sized blocks. Equals ``(score_np(ctx, tok) < threshold).sum(1)``."""
    k_ctx = _u64(k_ctx)
    k_tok = _u64(k_tok)
    m = int(digests.size)
    counts = np.zeros(k_ctx.size, dtype=np.int64)
    if m == 0:
        return counts
    rows = max(1, block // m)
    limit = np.uint64(threshold << 32)
    for s in range(0, k_ctx.size, rows):
        e = min(k_ctx.size, s + rows)
        c = np.bitwise_xor(k_ctx[s:e, None], digests[None, :])
        t = np.empty_like(c)
        _mix_inplace_np(c, t)
        z = np.bitwise_xor(k_tok[s:e, None], token_premix[None, :])
        _mix_inplace_np(z, t)
        z ^= c
        _mix_inplace_np(z, t)
        counts[s:e] = (z < limit).sum(axis=1)
    return counts


def green_mask_np_into(
    ctx_hash: np.ndarray,
    tok_hash: np.ndarray,
    threshold: int,
    z: np.ndarray,
    t: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Green mask ``(rows, width)`` of uint64 context hashes ``(rows,)`` against token hashes
    ``(rows, width)`` into ``out`` (bool), with ``z`` and ``t`` uint64 scratch of the same
    shape: the same bits as ``score_np(...) < threshold``, for the CPU generation path.

    The mix's last step, ``z ^= z >> 31``, changes the 32-bit score ``z >> 32`` only in its
    lowest bit and only when its top bit is set, that is when the score is at least 2^31;
    below a threshold of 2^31 (gamma < 0.5) it cannot change which scores are green, so it
    is skipped there."""
    np.bitwise_xor(tok_hash, ctx_hash[:, None], out=z)
    _mix_inplace_np(z, t, final=threshold >= 1 << 31)
    return np.less(z, np.uint64(threshold << 32), out=out)


def token_premix_np(tokens: np.ndarray) -> np.ndarray:
    """Key-free token premix (the inner mix of :func:`token_hash_np`)."""
    return _tok_premix_np(np.asarray(tokens), 1)


# ---------------------------------------------------------------------------------- torch


def _lsr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _mix_torch(z: torch.Tensor) -> torch.Tensor:
    z = (z ^ _lsr(z, 30)) * _signed(_C1)
    z = (z ^ _lsr(z, 27)) * _signed(_C2)
    return z ^ _lsr(z, 31)


def _tok_premix_torch(tokens: torch.Tensor, salt: int) -> torch.Tensor:
    return _mix_torch(tokens.long() * _signed(_G) + salt)


def token_hash_torch(k_tok: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`token_hash_np` on int64 tensors (same bits)."""
    return _mix_torch(k_tok ^ _tok_premix_torch(tokens, 1))


def context_hash_torch(k_ctx: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`context_hash_np`: ``windows`` is ``(..., h)``."""
    pre = _tok_premix_torch(windows, 2)
    d = pre.new_full(windows.shape[:-1], _signed(_G))
    for i in range(windows.shape[-1]):
        d = _mix_torch(d ^ pre[..., i])
    return _mix_torch(k_ctx ^ d)


def score_torch(ctx_hash: torch.Tensor, tok_hash: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`score_np` (values in [0, 2^32) as int64)."""
    return _lsr(_mix_torch(ctx_hash ^ tok_hash), 32)


def green_mask_torch(
    ctx_hash: torch.Tensor,
    tok_hash: torch.Tensor,
    threshold: int,
    scratch: torch.Tensor | None = None,
) -> torch.Tensor:
    """Green mask ``(rows, vocab)`` for context hashes ``(rows,)`` against token hashes
    ``(rows | 1, vocab)``: the same bits as ``score_torch(...) < threshold``, computed with
    in-place operations and one signed comparison (the generation hot path). ``scratch``,
    an int64 tensor of the same shape, saves one allocation per call."""
    import torch

    z = torch.bitwise_xor(tok_hash, ctx_hash[:, None])
    t = scratch if scratch is not None else torch.empty_like(z)
    for shift, mult in ((30, _signed(_C1)), (27, _signed(_C2)), (31, None)):
        torch.bitwise_right_shift(z, shift, out=t)
        t.bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(t)
        if mult is not None:
            z.mul_(mult)
    # unsigned (z >> 32) < thr  <=>  signed (z ^ 2^63) < (thr << 32) ^ 2^63
    z.bitwise_xor_(_signed(1 << 63))
    return z < _signed((threshold << 32) ^ (1 << 63))


def green_torch(
    key: bytes, windows: torch.Tensor, tokens: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Torch twin of :func:`green_np`."""
    import torch

    k_ctx, k_tok = key_words(key)
    dev = windows.device
    c = context_hash_torch(torch.tensor(_signed(k_ctx), dtype=torch.int64, device=dev), windows)
    t = token_hash_torch(torch.tensor(_signed(k_tok), dtype=torch.int64, device=dev), tokens)
    return score_torch(c, t) < gamma_threshold(gamma)
