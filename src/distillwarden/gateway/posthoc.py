"""Post-hoc watermark for black-box upstreams (a model the provider cannot change).

When a licence's watermark mode is ``posthoc`` or ``both``, the text of each non-streaming
answer gets the account-keyed lexical watermark (and, with ``canary_rate`` > 0, the
account's canaries) before it leaves the gateway; the event log records the marked text,
which is what the customer received. Streamed answers pass unchanged (see docs/gateway.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PosthocMarker"]


class PosthocMarker:
    """Marks answers for licences that ask for it; keyed per account from the secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._markers: dict[tuple[str, float], tuple[Any, Any]] = {}

    @staticmethod
    def wants(watermark: Mapping[str, Any]) -> bool:
        """Cheap check on the licence's watermark settings (no parsing on the common path)."""
        return watermark.get("mode") in ("posthoc", "both")

    def _for(self, org_id: str, canary_rate: float) -> tuple[Any, Any]:
        key = (org_id, canary_rate)
        hit = self._markers.get(key)
        if hit is None:
            from ..watermark.canary import CanarySet
            from ..watermark.config import derive_account_key
            from ..watermark.lexical import LexicalWatermarker

            account_key = derive_account_key(self._secret, org_id)
            canaries = CanarySet(account_key, rate=canary_rate) if canary_rate > 0 else None
            hit = (LexicalWatermarker(account_key), canaries)
            if len(self._markers) < 65536:
                self._markers[key] = hit
        return hit

    def apply(self, org_id: str, watermark: Mapping[str, Any], response: dict[str, Any]) -> bool:
        """Mark every choice's text in place; True when any text changed."""
        from ..watermark.licence import parse_licence_watermark

        settings = parse_licence_watermark(watermark)
        lexical, canaries = self._for(org_id, settings.canary_rate)
        response_id = str(response.get("id") or "")
        changed = False
        for i, choice in enumerate(response.get("choices") or []):
            if not isinstance(choice, dict):
                continue
            msg = choice.get("message")
            holder, field = (msg, "content") if isinstance(msg, dict) else (choice, "text")
            text = holder.get(field)
            if not isinstance(text, str) or not text:
                continue
            marked = lexical.apply(text)
            if canaries is not None:
                marked = canaries.maybe_insert(marked, f"{response_id}:{i}")
            if marked != text:
                holder[field] = marked
                changed = True
        return changed
