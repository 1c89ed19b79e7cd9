"""Enforcement and investigation: policy → graduated actions, cases and evidence bundles,
webhooks, indicator sharing (see docs/enforcement.md).

The public API is importable from here; modules load on first use so that importing the
CLI stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ACTION_ORDER": "policy",
    "Policy": "policy",
    "PolicyError": "policy",
    "load_policy": "policy",
    "parse_policy": "policy",
    "run_examples": "policy",
    "default_policy_path": "policy",
    "activate_policy": "policy_store",
    "active_policy": "policy_store",
    "PlannedAction": "actions",
    "EnforcementError": "actions",
    "ConflictingActions": "actions",
    "apply_policy": "actions",
    "plan_policy": "actions",
    "take_action": "actions",
    "take_actions": "actions",
    "ActionRequest": "actions",
    "open_case": "cases",
    "open_case_for": "cases",
    "open_case_from_finding": "cases",
    "add_note": "cases",
    "attach_finding": "cases",
    "attach_requests": "cases",
    "attach_file": "cases",
    "record_response": "cases",
    "decide": "cases",
    "timeline": "cases",
    "export_bundle": "bundle",
    "verify_bundle": "bundle",
    "add_webhook": "webhooks",
    "enqueue": "webhooks",
    "deliver_due": "webhooks",
    "verify_signature": "webhooks",
    "check_destination": "webhooks",
    "export_indicators": "indicators",
    "import_indicators": "indicators",
    "measure_propagation": "propagation",
    "publish_plans": "propagation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'distillwarden.enforce' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
