"""The logits processor: per-row keys, repeated-context masking, generate(), vLLM adapter."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList

from distillwarden.watermark.config import WatermarkConfig, derive_account_key
from distillwarden.watermark.detect import detect_tokens
from distillwarden.watermark.greenlist import green_torch
from distillwarden.watermark.processor import AccountWatermarkLogitsProcessor
from distillwarden.watermark.vllm import VLLMWatermarkProcessor

CFG = WatermarkConfig(vocab_size=500, gamma=0.25, delta=2.0, context_width=2)
KEY_A = derive_account_key(b"master", "acct-a")
KEY_B = derive_account_key(b"master", "acct-b")


def test_bias_goes_to_exactly_the_green_tokens_per_row() -> None:
    proc = AccountWatermarkLogitsProcessor(CFG, [KEY_A, KEY_B, None])
    ids = torch.tensor([[5, 6, 7], [5, 6, 7], [5, 6, 7]])
    out = proc(ids, torch.zeros(3, 500))
    vocab = torch.arange(500)
    win = torch.tensor([6, 7]).expand(500, 2)
    assert torch.equal(out[0] > 0, green_torch(KEY_A, win, vocab, CFG.gamma))
    assert torch.equal(out[1] > 0, green_torch(KEY_B, win, vocab, CFG.gamma))
    assert not out[2].any()
    assert set(out[0].unique().tolist()) == {0.0, CFG.delta}


def test_repeated_context_is_not_watermarked_again() -> None:
    proc = AccountWatermarkLogitsProcessor(CFG, KEY_A)
    seq = [1, 2, 3, 4]
    first = proc(torch.tensor([seq]), torch.zeros(1, 500))
    assert first.any()
    seq += [9]
    assert proc(torch.tensor([seq]), torch.zeros(1, 500)).any()
    seq += [3, 4]  # context (3, 4) again: skip ... after two steps of the same sequence
    proc(torch.tensor([seq[:-1]]), torch.zeros(1, 500))
    again = proc(torch.tensor([seq]), torch.zeros(1, 500))
    assert not again.any()
    # without masking the same context is biased every time
    nomask = AccountWatermarkLogitsProcessor(
        CFG.with_settings({"ignore_repeated_contexts": False}), KEY_A
    )
    nomask(torch.tensor([seq[:-1]]), torch.zeros(1, 500))
    assert nomask(torch.tensor([seq]), torch.zeros(1, 500)).any()


def test_new_generation_resets_history() -> None:
    proc = AccountWatermarkLogitsProcessor(CFG, KEY_A)
    assert proc(torch.tensor([[1, 2, 3, 4]]), torch.zeros(1, 500)).any()
    # a fresh prompt ending in the same context is a new sequence: biased again
    assert proc(torch.tensor([[8, 3, 4]]), torch.zeros(1, 500)).any()


def test_each_distinct_context_is_biased_once_per_sequence() -> None:
    """Teacher-forced through a repetitive sequence (a loop of 4 tokens), the processor
    biases exactly the steps whose context window is new in that sequence."""
    seq = [1, 2] + [7, 8, 9, 10] * 10
    proc = AccountWatermarkLogitsProcessor(CFG, [KEY_A, KEY_A])
    biased_steps = []
    for t in range(2, len(seq) + 1):
        ids = torch.tensor([seq[:t], seq[:t]])
        biased_steps.append(bool(proc(ids, torch.zeros(2, 500))[0].any()))
    windows = [tuple(seq[t - 2 : t]) for t in range(2, len(seq) + 1)]
    first_seen = [w not in windows[:i] for i, w in enumerate(windows)]
    assert biased_steps == first_seen
    assert sum(biased_steps) == 6


def _tiny_llama() -> LlamaForCausalLM:
    """A randomly initialised two-layer Llama with a 500-token vocabulary (seed 0)."""
    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=500,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
        )
    ).eval()


def test_works_with_generate_batch_and_sampling() -> None:
    model = _tiny_llama()
    prompts = torch.randint(0, 500, (3, 6))
    proc = AccountWatermarkLogitsProcessor(CFG, [KEY_A, KEY_B, None])
    with torch.no_grad():
        out = model.generate(
            prompts,
            attention_mask=torch.ones_like(prompts),
            do_sample=True,
            max_new_tokens=100,
            min_new_tokens=100,
            logits_processor=LogitsProcessorList([proc]),
            pad_token_id=0,
        )
    gen = out[:, 6:]
    res_a = detect_tokens(gen[0].tolist(), CFG, KEY_A, prompt_ids=prompts[0].tolist())
    res_b = detect_tokens(gen[1].tolist(), CFG, KEY_B, prompt_ids=prompts[1].tolist())
    res_none = detect_tokens(gen[2].tolist(), CFG, KEY_A, prompt_ids=prompts[2].tolist())
    cross = detect_tokens(gen[0].tolist(), CFG, KEY_B)
    assert res_a.verdict == "watermarked" and res_b.verdict == "watermarked"
    assert res_none.verdict != "watermarked" and cross.verdict != "watermarked"


def test_vllm_adapter_matches_transformers_processor() -> None:
    hf = AccountWatermarkLogitsProcessor(CFG, KEY_A)
    adapter = VLLMWatermarkProcessor(CFG, KEY_A)
    prompt = [11, 12, 13]
    output: list[int] = []
    logits = torch.randn(20, 500, generator=torch.Generator().manual_seed(3))
    for step in range(20):
        ids = torch.tensor([prompt + output])
        want = hf(ids, logits[step][None, :])[0]
        got = adapter(prompt, output, logits[step].clone())
        assert torch.equal(want, got)
        output.append([7, 8, 7, 8, 9][step % 5])  # repeats contexts: masking must agree


def test_sliced_cpu_path_equals_whole_vocabulary_maths() -> None:
    cfg = WatermarkConfig(vocab_size=49_152)
    proc = AccountWatermarkLogitsProcessor(cfg, [KEY_A, None, KEY_B])
    ids = torch.tensor([[3, 40_000, 17], [3, 40_000, 17], [9, 9, 9]])
    scores = torch.randn(3, 49_152, generator=torch.Generator().manual_seed(0))
    out = proc(ids, scores.clone())
    vocab = torch.arange(49_152)
    for row, key in ((0, KEY_A), (2, KEY_B)):
        win = ids[row, -2:].expand(49_152, 2)
        green = green_torch(key, win, vocab, cfg.gamma)
        assert torch.equal(out[row], scores[row] + green.float() * cfg.delta)
    assert torch.equal(out[1], scores[1])


# ------------------------------------------------------------------ length neutrality

SPECIAL = (0, 2, 5)
CFG_SP = WatermarkConfig(vocab_size=500, special_token_ids=SPECIAL)
CFG_OLD = WatermarkConfig(vocab_size=500, special_token_ids=SPECIAL, length_neutral=False)
NON_SPECIAL = torch.tensor([i for i in range(500) if i not in SPECIAL])


def _biased(cfg: WatermarkConfig, scores: torch.Tensor, keys: list) -> torch.Tensor:
    ids = torch.tensor([[5, 6, 7], [5, 6, 7], [8, 9, 7], [1, 1, 1]])[: scores.shape[0]]
    return AccountWatermarkLogitsProcessor(cfg, keys)(ids, scores.clone())


def test_special_tokens_keep_their_probability() -> None:
    scores = torch.randn(4, 500, generator=torch.Generator().manual_seed(1)) * 3
    scores[:, 2] += 4.0  # a likely EOS
    keys = [KEY_A, KEY_B, KEY_A, None]
    out = _biased(CFG_SP, scores, keys)
    before = torch.softmax(scores, -1)[:, list(SPECIAL)]
    after = torch.softmax(out, -1)[:, list(SPECIAL)]
    assert torch.allclose(after, before, atol=1e-6, rtol=0)
    assert ((after / before) - 1).abs().max() < 1e-5
    # the old (version 1) bias moves EOS probability: this test would catch its return
    old = torch.softmax(_biased(CFG_OLD, scores, keys), -1)[:, list(SPECIAL)]
    assert ((old[:3] / before[:3]) - 1).abs().min() > 0.1


def test_non_special_logits_equal_the_plain_bias_bit_for_bit() -> None:
    scores = torch.randn(4, 500, generator=torch.Generator().manual_seed(2))
    keys = [KEY_A, KEY_B, KEY_A, None]
    new, old = _biased(CFG_SP, scores, keys), _biased(CFG_OLD, scores, keys)
    assert torch.equal(new[:, NON_SPECIAL], old[:, NON_SPECIAL])
    vocab = torch.arange(500)
    green = green_torch(KEY_A, torch.tensor([6, 7]).expand(500, 2), vocab, CFG_SP.gamma)
    plain = scores[0] + green.float() * CFG_SP.delta
    assert torch.equal(new[0, NON_SPECIAL], plain[NON_SPECIAL])
    # green tokens gain probability against red ones: the watermark is still there
    p_new, p_old = torch.softmax(new[0], -1), torch.softmax(scores[0], -1)
    gain = p_new / p_old
    assert gain[NON_SPECIAL][green[NON_SPECIAL]].min() > gain[NON_SPECIAL][~green[NON_SPECIAL]].max()
    # the unkeyed row is untouched, special logits included
    assert torch.equal(new[3], scores[3])


def test_length_neutral_survives_extreme_logits() -> None:
    scores = torch.randn(3, 500, generator=torch.Generator().manual_seed(3))
    scores[0, 2] = 200.0  # EOS all but certain: non-special logits underflow
    scores[1, 0] = -math.inf  # EOS banned (e.g. min_new_tokens): stays banned
    scores[2, NON_SPECIAL] = -math.inf  # only special tokens allowed
    out = _biased(CFG_SP, scores, [KEY_A, KEY_A, KEY_B])
    assert not out.isnan().any()
    assert out[1, 0] == -math.inf
    assert torch.equal(out[2], scores[2])
    assert torch.allclose(torch.softmax(out, -1)[:, 2], torch.softmax(scores, -1)[:, 2], atol=1e-6)


def test_length_neutral_on_the_sliced_full_vocabulary_path() -> None:
    special = tuple(range(17))  # SmolLM2's special tokens
    cfg = WatermarkConfig(vocab_size=49_152, special_token_ids=special)
    old = WatermarkConfig(vocab_size=49_152, special_token_ids=special, length_neutral=False)
    ids = torch.tensor([[3, 40_000, 17], [3, 40_000, 17], [9, 9, 9]])
    scores = torch.randn(3, 49_152, generator=torch.Generator().manual_seed(0))
    keys = [KEY_A, None, KEY_B]
    out = AccountWatermarkLogitsProcessor(cfg, keys)(ids, scores.clone())
    ref = AccountWatermarkLogitsProcessor(old, keys)(ids, scores.clone())
    assert torch.equal(out[:, 17:], ref[:, 17:])
    p, q = torch.softmax(out, -1)[:, :17], torch.softmax(scores, -1)[:, :17]
    assert torch.allclose(p, q, atol=1e-6, rtol=1e-4)


def test_length_neutral_with_special_ids_in_several_vocabulary_slices() -> None:
    # special ids spread over the vocabulary (so over the CPU path's slices), a likely EOS
    # in the last one, T = 0.7: their probabilities at T are kept, every other logit is the
    # plain bias
    special = (1, 20_000, 49_151)
    cfg = WatermarkConfig(vocab_size=49_152, special_token_ids=special)
    old = WatermarkConfig(vocab_size=49_152, special_token_ids=special, length_neutral=False)
    ids = torch.tensor([[3, 40_000, 17], [3, 40_000, 17], [9, 9, 9]])
    scores = torch.randn(3, 49_152, generator=torch.Generator().manual_seed(4)) * 2
    scores[:, 49_151] += 9.0
    keys = [KEY_A, None, KEY_B]
    out = AccountWatermarkLogitsProcessor(cfg, keys, temperature=0.7)(ids, scores.clone())
    ref = AccountWatermarkLogitsProcessor(old, keys, temperature=0.7)(ids, scores.clone())
    rest = torch.tensor([i for i in range(49_152) if i not in special])
    assert torch.equal(out[:, rest], ref[:, rest])
    p = torch.softmax(out / 0.7, -1)[:, list(special)]
    q = torch.softmax(scores / 0.7, -1)[:, list(special)]
    assert torch.allclose(p, q, atol=1e-6, rtol=1e-4)
    plain = torch.softmax(ref / 0.7, -1)[:, list(special)]
    assert ((plain[[0, 2], 2] / q[[0, 2], 2]) - 1).abs().min() > 0.05  # the bias would move it


def test_eos_probability_is_unchanged_at_every_step_of_generate() -> None:
    model = _tiny_llama()
    seen: dict[str, list[torch.Tensor]] = {"before": [], "after": []}
    temperature = 0.7  # generate divides by it after the custom processors

    def record(name: str):  # type: ignore[no-untyped-def]
        def proc(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            seen[name].append(torch.softmax(scores / temperature, -1)[:, 2].clone())
            return scores

        return proc

    wm = AccountWatermarkLogitsProcessor(CFG_SP, [KEY_A, KEY_B], temperature=temperature)
    prompts = torch.randint(10, 500, (2, 6))
    with torch.no_grad():
        model.generate(
            prompts,
            attention_mask=torch.ones_like(prompts),
            do_sample=True,
            temperature=temperature,
            max_new_tokens=40,
            logits_processor=LogitsProcessorList([record("before"), wm, record("after")]),
            eos_token_id=2,
            pad_token_id=0,
        )
    before, after = torch.stack(seen["before"]), torch.stack(seen["after"])
    assert before.shape[0] >= 5
    assert torch.allclose(after, before, atol=1e-6, rtol=0)


def test_vllm_adapter_is_length_neutral_like_transformers() -> None:
    hf = AccountWatermarkLogitsProcessor(CFG_SP, KEY_A)
    adapter = VLLMWatermarkProcessor(CFG_SP, KEY_A)
    prompt = [11, 12, 13]
    output: list[int] = []
    logits = torch.randn(12, 500, generator=torch.Generator().manual_seed(4))
    for step in range(12):
        want = hf(torch.tensor([prompt + output]), logits[step][None, :].clone())[0]
        got = adapter(prompt, output, logits[step].clone())
        assert torch.equal(want, got)
        p = torch.softmax(got, -1)[list(SPECIAL)]
        assert torch.allclose(p, torch.softmax(logits[step], -1)[list(SPECIAL)], atol=1e-6)
        output.append([7, 8, 7, 8, 9][step % 5])


def test_length_neutral_at_the_sampling_temperature_and_for_greedy() -> None:
    scores = torch.randn(4, 500, generator=torch.Generator().manual_seed(5)) * 2
    keys = [KEY_A, KEY_B, KEY_A, KEY_B]
    ids = torch.tensor([[5, 6, 7], [5, 6, 7], [8, 9, 7], [1, 1, 1]])
    sp = list(SPECIAL)
    for t in (0.3, 0.7, 1.5):
        out = AccountWatermarkLogitsProcessor(CFG_SP, keys, temperature=t)(ids, scores.clone())
        want = torch.softmax(scores / t, -1)[:, sp]
        assert torch.allclose(torch.softmax(out / t, -1)[:, sp], want, atol=1e-6, rtol=1e-4)
        if t != 1.0:  # neutral at T = 1 is not neutral at another temperature
            at_one = AccountWatermarkLogitsProcessor(CFG_SP, keys)(ids, scores.clone())
            drift = (torch.softmax(at_one / t, -1)[:, sp] / want - 1).abs().max()
            assert drift > 1e-3
    # greedy: EOS just above the best other tokens, one of them green: EOS must stay on top
    # (neutral at T = 1 it loses to the boosted green token)
    green = green_torch(KEY_A, torch.tensor([6, 7]).expand(500, 2), torch.arange(500), 0.25)
    best = int(torch.nonzero(green[10:])[0]) + 10
    row = torch.full((1, 500), -5.0)
    red = (torch.nonzero(~green[10:])[:5, 0] + 10).tolist()
    row[0, best], row[0, red], row[0, 2] = 3.0, 3.0, 3.5  # five red tokens as likely as best
    greedy = AccountWatermarkLogitsProcessor(CFG_SP, KEY_A, temperature=0.0)
    assert int(greedy(torch.tensor([[5, 6, 7]]), row.clone()).argmax()) == 2
    sampling = AccountWatermarkLogitsProcessor(CFG_SP, KEY_A)
    assert int(sampling(torch.tensor([[5, 6, 7]]), row.clone()).argmax()) == best
    with pytest.raises(ValueError, match="temperature"):
        AccountWatermarkLogitsProcessor(CFG_SP, KEY_A, temperature=-1.0)
