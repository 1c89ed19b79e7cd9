"""Test helpers: a seeded synthetic language model and a tiny whitespace tokenizer, so the
statistics can be checked exactly without loading a real model."""

from __future__ import annotations

import torch

from distillwarden.watermark.processor import AccountWatermarkLogitsProcessor


class TinyTokenizer:
    """Whitespace tokenizer over a fixed word list (satisfies ``TokenizerLike``)."""

    def __init__(self, words: list[str], name: str = "tiny-words") -> None:
        self.name_or_path = name
        self._vocab = {w: i for i, w in enumerate(words)}
        self._inv = words

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self._vocab[w] for w in text.split() if w in self._vocab]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self._inv[i] for i in ids)


def synthetic_generate(
    vocab: int,
    n_seqs: int,
    length: int,
    *,
    processor: AccountWatermarkLogitsProcessor | None = None,
    temperature: float = 1.5,
    seed: int = 0,
) -> torch.Tensor:
    """Sample from a seeded bigram LM (random logits table scaled by ``temperature``)."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(vocab, vocab, generator=gen) * temperature
    ids = torch.randint(0, vocab, (n_seqs, 4), generator=gen)
    for _ in range(length):
        scores = table[ids[:, -1]].clone()
        if processor is not None:
            scores = processor(ids, scores)
        nxt = torch.multinomial(torch.softmax(scores, -1), 1, generator=gen)
        ids = torch.cat([ids, nxt], dim=1)
    return ids
