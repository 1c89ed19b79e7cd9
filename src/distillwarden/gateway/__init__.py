"""The OpenAI-compatible gateway: auth from an in-memory cache, licence checks, rate limits,
pooled upstream proxying (SSE included) and one durable event per accepted request."""

from .app import GatewayApp, create_app
from .errors import GatewayError
from .store_sync import CHANGES_CHANNEL, publish_change

__all__ = ["CHANGES_CHANNEL", "GatewayApp", "GatewayError", "create_app", "publish_change"]
