"""Post-hoc lexical watermark applied by the gateway for `posthoc` licences."""

from __future__ import annotations

from distillwarden.watermark.config import derive_account_key
from distillwarden.watermark.lexical import LexicalWatermarker

from .conftest import Harness

TEXT = (
    "The chief problem was huge: a dreadful, lengthy and terrible delay, a dirty and "
    "peculiar fake report, an enormous and cruel mistake that nobody found suitable. "
) * 3


def test_posthoc_licence_gets_the_account_keyed_lexical_watermark(gateway: Harness) -> None:
    previous = gateway.upstream.answer
    gateway.upstream.answer = TEXT
    try:
        _check(gateway)
    finally:
        gateway.upstream.answer = previous


def _check(gateway: Harness) -> None:
    marked = gateway.account(watermark={"mode": "posthoc"})
    plain = gateway.account()
    expected = LexicalWatermarker(
        derive_account_key(gateway.settings.secret_bytes(), marked.org_id)
    ).apply(TEXT)
    assert expected != TEXT  # the text has substitution sites, so the check can fail

    r = gateway.chat(marked)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == expected
    assert gateway.events(marked.org_id)[-1]["response_text"] == expected

    r = gateway.chat(plain)
    assert r.json()["choices"][0]["message"]["content"] == TEXT
