"""Request and response bodies of the admin API (they make up its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyOut",
    "AuditAnchorOut",
    "AuditEntryOut",
    "AuditVerificationOut",
    "CaseDetailOut",
    "CaseEntryOut",
    "CaseOut",
    "ClusterOut",
    "ErrorBody",
    "FindingOut",
    "LicenceOut",
    "LicenceSet",
    "OrgCreate",
    "OrgDetail",
    "OrgOut",
    "OrgUpdate",
    "Page",
    "Reinstate",
    "Revoke",
    "StatusChangeOut",
    "StatusSet",
]

T = TypeVar("T")

Status = Literal["active", "warned", "throttled", "suspended", "terminated"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"message", "type", "code"}}``."""

    error: ErrorDetail


class OrgCreate(_In):
    name: str = Field(examples=["Acme Analytics"])
    id: str | None = Field(default=None, description="chosen id; generated when omitted")
    tier: str = "standard"
    contact_email: str | None = None
    home_region: str | None = Field(default=None, examples=["US"])
    payment_fingerprint_hash: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    reason: str = "created"


class OrgUpdate(_In):
    name: str | None = None
    tier: str | None = None
    contact_email: str | None = None
    home_region: str | None = None
    payment_fingerprint_hash: str | None = None
    metadata: dict[str, Any] | None = None
    reason: str = "updated"


class OrgOut(_Out):
    id: str
    name: str
    tier: str
    contact_email: str | None
    home_region: str | None
    payment_fingerprint_hash: str | None
    status: str
    status_reason: str | None
    status_actor: str | None
    status_changed_at: datetime | None
    throttle_factor: float | None
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    created_at: datetime


class LicenceOut(_Out):
    id: str
    org_id: str
    name: str
    channel: str
    regions: list[str]
    permitted_uses: list[str]
    models: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    requests_per_min: int | None
    tokens_per_min: int | None
    watermark: dict[str, Any]
    conditions: str | None
    active: bool
    created_at: datetime


class OrgDetail(OrgOut):
    licence: LicenceOut | None = None
    active_keys: int = 0


class ApiKeyCreate(_In):
    name: str | None = None
    expires_at: datetime | None = None
    requests_per_min: int | None = Field(default=None, ge=0)
    tokens_per_min: int | None = Field(default=None, ge=0)


class ApiKeyOut(_Out):
    id: str
    org_id: str
    name: str | None
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None
    requests_per_min: int | None
    tokens_per_min: int | None


class ApiKeyCreated(BaseModel):
    """A new key: ``secret`` is shown this once and cannot be recovered."""

    key: ApiKeyOut
    secret: str


class Revoke(_In):
    reason: str


class LicenceSet(_In):
    name: str = "standard"
    channel: str = Field(default="direct", examples=["direct", "reseller:cloudco"])
    regions: list[str] = Field(default_factory=list, description="empty: every region")
    permitted_uses: list[str] = Field(default_factory=lambda: ["inference"])
    models: list[str] = Field(default_factory=lambda: ["*"])
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    requests_per_min: int | None = None
    tokens_per_min: int | None = None
    watermark: dict[str, Any] | None = None
    conditions: str | None = None
    reason: str


class StatusSet(_In):
    status: Status
    reason: str
    case_id: str | None = None
    throttle_factor: float | None = None


class Reinstate(_In):
    reason: str
    conditions: str | None = None
    licence_changes: dict[str, Any] | None = None
    case_id: str | None = None


class StatusChangeOut(_Out):
    id: int
    org_id: str
    old_status: str
    new_status: str
    reason: str
    actor: str
    case_id: str | None
    at: datetime


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    subject_type: str
    subject_id: str
    reason: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditAnchorOut(BaseModel):
    seq: int
    hash: str
    anchor: str = Field(description="SEQ:HASH, the form `audit verify --anchor` takes")


class AuditVerificationOut(BaseModel):
    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None
    message: str


class FindingOut(_Out):
    id: str
    org_id: str
    cluster_id: str | None
    detector: str
    risk: float
    p_value: float | None
    threshold_fpr: float | None
    signals: dict[str, Any]
    evidence: dict[str, Any]
    window_start: datetime | None
    window_end: datetime | None
    state: str
    created_at: datetime


class ClusterOut(_Out):
    id: str
    members: list[Any]
    evidence: dict[str, Any]
    score: float
    created_at: datetime


class CaseOut(_Out):
    id: str
    title: str
    org_id: str | None
    cluster_id: str | None
    state: str
    opened_by: str
    decision: str | None
    decision_reason: str | None
    created_at: datetime
    updated_at: datetime


class CaseEntryOut(_Out):
    id: int
    kind: str
    body: dict[str, Any]
    actor: str
    at: datetime


class CaseDetailOut(CaseOut):
    entries: list[CaseEntryOut]


class Page(BaseModel, Generic[T]):
    """A list response: ``{"data": [...]}``."""

    data: list[T]
