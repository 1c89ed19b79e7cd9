"""Account-keyed green-list watermark as a transformers ``LogitsProcessor``.

Each row of a batch may carry its own account key (or none), so a server batching requests
from several accounts watermarks each with its own key in one vectorised step.

Length neutrality (``WatermarkConfig.length_neutral``, on by default): adding ``delta`` to
green tokens takes probability from every red token, EOS included, so a plain green-list
bias changes when generation stops. The special tokens (EOS, end of turn, ...) are instead
given the logit that keeps their probability exactly what it was::

    s'_eos = s_eos + T * (logsumexp(biased non-special / T) - logsumexp(original non-special / T))

Then sum_j exp(s'_j / T) over non-special tokens and each exp(s'_eos / T) scale by the same
factor, so P'(eos) = P(eos) under the sampling temperature T that follows the processor
(T = 1 unless told; T = 0, greedy, keeps "EOS beats every other token" unchanged), and only
the non-special tokens are reweighted among themselves. Nucleus/top-k truncation after the
processor renormalises over a different set of tokens, so it is exact only without them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .config import WatermarkConfig
from .greenlist import (
    _signed,
    context_hash_torch,
    gamma_threshold,
    green_mask_np_into,
    green_mask_torch,
    key_words,
    token_hash_torch,
)

try:  # transformers is optional for the detector; the processor subclasses it when present
    from transformers import LogitsProcessor as _Base
except ImportError:  # pragma: no cover - transformers is installed with the watermark extra
    _Base = object  # type: ignore[assignment,misc]

__all__ = ["AccountWatermarkLogitsProcessor", "GreenListBias"]

_CPU_SLICE = 16_384  # elements per slice: below torch's intra-op parallel grain (32,768)
_NP_SLICE = 131_072  # elements per slice of the numpy CPU path (its scratch stays in L2)
_NP_DTYPES = (torch.float32, torch.float64)


class GreenListBias:
    """The vectorised core shared by the transformers processor and the vLLM adapter:
    keyed green masks for (row contexts × vocabulary) plus per-row repeated-context state."""

    def __init__(
        self, config: WatermarkConfig, keys: Sequence[bytes | None], temperature: float = 1.0
    ) -> None:
        if not (temperature >= 0.0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        self.config = config
        self.temperature = float(temperature)
        self.keys = list(keys)
        self.threshold = gamma_threshold(config.gamma)
        self._active = torch.tensor([k is not None for k in self.keys], dtype=torch.bool)
        words = [key_words(k) if k is not None else (0, 0) for k in self.keys]
        self._k_ctx = torch.tensor([_signed(w[0]) for w in words], dtype=torch.int64)
        self._k_tok = torch.tensor([_signed(w[1]) for w in words], dtype=torch.int64)
        self._tok_cache: dict[tuple[int, str], torch.Tensor] = {}
        special = config.special_token_ids if config.length_neutral else ()
        self._special = torch.tensor(special, dtype=torch.int64)
        self._scratch: torch.Tensor | None = None
        self._np_buffers: dict[
            tuple[int, int, str], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
        ] = {}

    def active(self, device: torch.device) -> torch.Tensor:
        """``(rows,)`` whether each row has a key (is watermarked at all)."""
        if self._active.device != device:
            self._active = self._active.to(device)
        return self._active

    def token_hashes(self, vocab: int, device: torch.device) -> torch.Tensor:
        """``(rows, vocab)`` keyed token hashes, computed once per vocabulary size/device."""
        ck = (vocab, str(device))
        cached = self._tok_cache.get(ck)
        if cached is None:
            ids = torch.arange(vocab, dtype=torch.int64, device=device)
            cached = token_hash_torch(self._k_tok.to(device)[:, None], ids[None, :])
            self._tok_cache[ck] = cached
        return cached

    def context_hashes(
        self, windows: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Keyed hashes of each row's context window ``(rows, h)``."""
        k = self._k_ctx.to(windows.device)
        if rows is not None:
            k = k[rows]
        return context_hash_torch(k, windows)

    def special_ids(self, vocab: int, device: torch.device) -> torch.Tensor:
        """Ids whose probability the bias must not change (empty unless length-neutral)."""
        if self._special.device != device:
            self._special = self._special.to(device)
        sp = self._special
        if sp.numel() and int(sp[-1]) >= vocab:
            sp = sp[sp < vocab]
        return sp

    def add_bias(
        self, scores: torch.Tensor, ctx_hash: torch.Tensor, on: torch.Tensor
    ) -> torch.Tensor:
        """``scores`` plus ``delta`` on each row's green tokens (rows where ``on``); with a
        length-neutral config the special tokens then get back their old probability.

        On the CPU path at a positive temperature the special tokens' shift comes from the
        same pass that adds the bias: with ``e_j = exp((s_j - max) / T)`` over non-special
        tokens, ``S = sum e_j`` and ``S_g`` its green part, the biased mass is
        ``S + (e^(delta/T) - 1) S_g``, so ``shift = T log1p((e^(delta/T) - 1) S_g / S)``.
        Elsewhere (and for greedy decoding, T = 0) :meth:`keep_special_probability` compares
        the two log-sum-exps."""
        special = self.special_ids(scores.shape[1], scores.device)
        if special.numel() == 0 or self.config.delta == 0.0:
            return self._add_green(scores, ctx_hash, on)
        t = self.temperature
        if t == 0.0 or not self._numpy_path(scores):
            return self.keep_special_probability(
                scores, self._add_green(scores, ctx_hash, on), special
            )
        sp = special.numpy()
        sums = np.zeros((2, scores.shape[0]), dtype=np.float64)
        out = self._add_green_numpy(scores, ctx_hash, on, masses=(sp, sums))
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = t * np.log1p(math.expm1(self.config.delta / t) * sums[1] / sums[0])
        shift = np.where(np.isfinite(shift), shift, 0.0)
        o = out.numpy()
        o[:, sp] = scores.detach().numpy()[:, sp] + shift[:, None].astype(o.dtype)
        return out

    @staticmethod
    def _numpy_path(scores: torch.Tensor) -> bool:
        return scores.device.type == "cpu" and scores.dtype in _NP_DTYPES

    def keep_special_probability(
        self, scores: torch.Tensor, biased: torch.Tensor, special: torch.Tensor
    ) -> torch.Tensor:
        """``biased`` with each row's ``special`` logits set so that their probabilities at
        this processor's temperature equal those under ``scores`` (in place, vectorised over
        rows, float32, one reused scratch buffer instead of fresh allocations per step).

        Rows left unbiased get a zero shift, and a row whose non-special logits are all
        ``-inf`` is left as it was."""
        shift = self._lse_non_special(biased, special) - self._lse_non_special(scores, special)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        kept = scores.index_select(1, special).float() + shift[:, None]
        biased.index_copy_(1, special, kept.to(biased.dtype))
        return biased

    def _lse_non_special(self, x: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
        """``T * logsumexp(x / T)`` over each row's non-special logits (their maximum when
        T = 0), in four passes over a reused float32 buffer: row max, scaled shift, exp, sum.

        The max is taken over all tokens, so a row whose non-special logits all lie more
        than 87·T below a special one underflows to ``-inf`` and keeps its special logits
        unbiased (its non-special mass is below e^-87 either way)."""
        buf = self._scratch
        if buf is None or buf.shape != x.shape or buf.device != x.device:
            buf = self._scratch = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        t = self.temperature
        if t == 0.0:
            buf.copy_(x)
            buf.index_fill_(1, special, -math.inf)
            return buf.amax(dim=1)
        m = x.amax(dim=1, keepdim=True).float()
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        torch.add(m * (-1.0 / t), x, alpha=1.0 / t, out=buf)  # (x - m) / T in one pass
        buf.exp_()
        buf.index_fill_(1, special, 0.0)
        return m[:, 0] + t * torch.log(buf.sum(dim=1))

    def _add_green(
        self, scores: torch.Tensor, ctx_hash: torch.Tensor, on: torch.Tensor
    ) -> torch.Tensor:
        """``scores`` plus ``delta`` on each row's green tokens (rows where ``on``), new tensor.

        On CPU (float32/float64 scores) the hashing runs in numpy, which has unsigned 64-bit
        shifts and lower per-operation overhead than torch, over cache-sized vocabulary
        slices (:meth:`_add_green_numpy`). Other devices and dtypes use torch; on CPU the
        vocabulary is then processed in slices below torch's parallel grain size, so each
        elementwise op runs on one thread: on a busy machine the thread hand-offs of
        parallel elementwise ops cost more than the arithmetic itself."""
        if self._numpy_path(scores):
            return self._add_green_numpy(scores, ctx_hash, on)
        rows, vocab = scores.shape
        tok = self.token_hashes(vocab, scores.device)
        delta = self.config.delta
        gate = None if bool(on.all()) else on[:, None]
        if scores.device.type != "cpu" or rows * vocab <= _CPU_SLICE:
            green = green_mask_torch(ctx_hash, tok, self.threshold)
            if gate is not None:
                green &= gate
            return torch.add(scores, green, alpha=delta)
        out = torch.empty_like(scores)
        step = max(256, _CPU_SLICE // rows)
        scratch = torch.empty((rows, step), dtype=torch.int64)
        for a in range(0, vocab, step):
            b = min(vocab, a + step)
            green = green_mask_torch(ctx_hash, tok[:, a:b], self.threshold, scratch[:, : b - a])
            if gate is not None:
                green &= gate
            torch.add(scores[:, a:b], green, alpha=delta, out=out[:, a:b])
        return out

    def _add_green_numpy(
        self,
        scores: torch.Tensor,
        ctx_hash: torch.Tensor,
        on: torch.Tensor,
        masses: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> torch.Tensor:
        """The CPU path of :meth:`_add_green`: same bits, numpy kernels
        (:func:`~distillwarden.watermark.greenlist.green_mask_np_into`).

        With ``masses = (sorted special ids, sums)`` it also adds each row's non-special
        mass ``sum exp((s - max) / T)`` to ``sums[0]`` and its green part to ``sums[1]``,
        while each slice is in cache (see :meth:`add_bias`)."""
        rows, vocab = scores.shape
        tok = self.token_hashes(vocab, scores.device).numpy().view(np.uint64)
        ctx = np.ascontiguousarray(ctx_hash.numpy()).view(np.uint64)
        s = scores.detach().numpy()
        out = torch.empty(scores.shape, dtype=scores.dtype)
        o = out.numpy()
        gate = None if bool(on.all()) else on.numpy()[:, None]
        delta = s.dtype.type(self.config.delta)
        step = min(vocab, max(256, _NP_SLICE // rows))
        z, t, g, e = self._np_scratch(rows, step, s.dtype)
        if masses is not None:
            special, sums = masses
            e_t = torch.from_numpy(e)  # the same memory: torch's exp and sum are faster
            totals = torch.from_numpy(sums)
            m = s.max(axis=1, keepdims=True)
            m[~np.isfinite(m)] = 0.0
            inv_t = s.dtype.type(1.0 / self.temperature)
        for a in range(0, vocab, step):
            b = min(vocab, a + step)
            w = b - a
            green = green_mask_np_into(
                ctx, tok[:, a:b], self.threshold, z[:, :w], t[:, :w], g[:, :w]
            )
            if gate is not None:
                green &= gate
            np.multiply(green, delta, out=o[:, a:b])  # numpy's where= is ten times slower
            np.add(o[:, a:b], s[:, a:b], out=o[:, a:b])
            if masses is not None:
                ew, et = e[:, :w], e_t[:, :w]
                np.subtract(s[:, a:b], m, out=ew)
                ew *= inv_t
                et.exp_()
                lo, hi = np.searchsorted(special, (a, b))
                if hi > lo:
                    ew[:, special[lo:hi] - a] = 0.0
                totals[0] += et.sum(dim=1)
                np.multiply(ew, green, out=ew)
                totals[1] += et.sum(dim=1)
        return out

    def _np_scratch(
        self, rows: int, step: int, dtype: np.dtype
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Scratch arrays of the numpy path (hash state, shift, green bits, masses), kept
        between decoding steps: a fresh megabyte per step costs page faults every step."""
        key = (rows, step, np.dtype(dtype).str)
        cached = self._np_buffers.get(key)
        if cached is None:
            cached = (
                np.empty((rows, step), dtype=np.uint64),
                np.empty((rows, step), dtype=np.uint64),
                np.empty((rows, step), dtype=bool),
                np.empty((rows, step), dtype=dtype),
            )
            self._np_buffers = {key: cached}
        return cached

    def green_mask(
        self, ctx_hash: torch.Tensor, vocab: int, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Boolean ``(rows, vocab)`` green lists for the given context hashes."""
        tok = self.token_hashes(vocab, ctx_hash.device)
        if rows is not None:
            tok = tok[rows]
        return green_mask_torch(ctx_hash, tok, self.threshold)


class AccountWatermarkLogitsProcessor(_Base):  # type: ignore[misc,valid-type]
    """Adds ``delta`` to the logits of green tokens, keyed per account; with a
    length-neutral config (the default) EOS and the other special tokens keep their
    probability, so output length is not changed by the bias.

    ``account_key`` is one key for the whole batch or one per row (``None`` leaves a row
    unwatermarked). Works with ``model.generate`` for any batch size, greedy or sampling.
    With ``ignore_repeated_contexts`` a context window already watermarked earlier in the
    same sequence is left alone, so repetitive output is not pushed into loops.
    ``temperature`` is the sampling temperature applied after this processor (transformers'
    ``generate`` applies ``temperature`` after custom processors; 0 for greedy): length
    neutrality is exact at that temperature.
    """

    def __init__(
        self,
        config: WatermarkConfig,
        account_key: bytes | Sequence[bytes | None],
        temperature: float = 1.0,
    ) -> None:
        if not (temperature >= 0.0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        self.config = config
        self.temperature = temperature
        self._keys: list[bytes | None] = (
            [account_key] if isinstance(account_key, bytes | bytearray) else list(account_key)
        )
        self._bias: GreenListBias | None = None
        self._history: torch.Tensor | None = None
        self._last_len = -1
        self._last_tokens: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the per-sequence context history (done automatically on a new generate)."""
        self._history = None
        self._last_len = -1
        self._last_tokens = None

    def _bias_for(self, batch: int) -> GreenListBias:
        if len(self._keys) == 1 and batch != 1:
            keys = self._keys * batch
        elif len(self._keys) == batch:
            keys = self._keys
        else:
            raise ValueError(
                f"got {len(self._keys)} account keys for a batch of {batch} rows; pass one "
                f"key, or one per row (None for unwatermarked rows)"
            )
        if self._bias is None or len(self._bias.keys) != batch:
            self._bias = GreenListBias(self.config, keys, self.temperature)
        return self._bias

    def _continues(self, input_ids: torch.Tensor) -> bool:
        return (
            self._history is not None
            and self._last_tokens is not None
            and input_ids.shape[1] == self._last_len + 1
            and input_ids.shape[0] == self._last_tokens.shape[0]
            and bool(torch.equal(input_ids[:, -2], self._last_tokens))
        )

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, length = input_ids.shape
        h = self.config.context_width
        bias = self._bias_for(batch)
        if length < h:
            return scores
        ctx = bias.context_hashes(input_ids[:, -h:])
        active = bias.active(scores.device)
        if self.config.ignore_repeated_contexts:
            if not self._continues(input_ids):
                self._history = ctx.new_empty((batch, 0))
            assert self._history is not None
            seen = (self._history == ctx[:, None]).any(dim=1)
            active = active & ~seen
            self._history = torch.cat([self._history, ctx[:, None]], dim=1)
            self._last_len = length
            self._last_tokens = input_ids[:, -1].clone()
        return bias.add_bias(scores, ctx, active)  # type: ignore[return-value]
