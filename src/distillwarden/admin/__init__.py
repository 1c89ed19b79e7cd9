"""The admin API (FastAPI) over the store services; mounted by the gateway at ``/admin``."""

from .api import create_admin_app, require_admin

__all__ = ["create_admin_app", "require_admin"]
