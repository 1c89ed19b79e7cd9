"""The local server's per-request watermark processor keeps the end-of-turn probability at
the request's own sampling temperature (so the watermark does not change answer length)."""

from __future__ import annotations

import json

import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import PreTrainedTokenizerFast

from distillwarden.upstream.watermarking import Watermarker

WORDS = ["<eos>", "<unk>"] + [f"w{i}" for i in range(498)]


def _tokenizer() -> PreTrainedTokenizerFast:
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<eos>")


def test_request_processor_is_length_neutral_at_its_temperature() -> None:
    wm = Watermarker(b"secret", _tokenizer())
    plan = wm.plan(
        {"x-distillwarden-org": "org_a", "x-distillwarden-watermark": json.dumps({"delta": 3.0})}
    )
    assert plan is not None
    assert plan.config.length_neutral and plan.config.special_token_ids == (0, 1)
    scores = torch.randn(1, 500, generator=torch.Generator().manual_seed(0)) * 2
    scores[0, 0] += 3.0
    ids = torch.tensor([[5, 6, 7]])
    for t in (0.5, 1.0):
        out = wm.processor(plan, t)(ids, scores.clone())
        assert not torch.equal(out, scores)  # the watermark is applied
        before = torch.softmax(scores / t, -1)[0, :2]
        after = torch.softmax(out / t, -1)[0, :2]
        assert torch.allclose(after, before, atol=1e-6, rtol=1e-4)
    greedy = wm.processor(plan, 0.0)(ids, scores.clone())
    assert (int(greedy.argmax()) < 2) == (int(scores.argmax()) < 2)
