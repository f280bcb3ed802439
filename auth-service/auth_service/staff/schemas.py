from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from shared.pagination import PageQuery
from shared.web import RequestModel


class AdminOrganizationQuery(RequestModel, PageQuery):
    q: str | None = Field(None, min_length=1, max_length=100, description="Matches the name or slug")


class AdminOrganizationOut(BaseModel):
    id: UUID
    name: str
    slug: str
    created_at: datetime
    deleted_at: datetime | None
    member_count: int


class StaffAccessRequest(RequestModel):
    organization_id: UUID
    reason: str = Field(min_length=1, max_length=500, description="Why; recorded in the organization's audit log")

    @field_validator("reason")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class StaffTokensOut(BaseModel):
    access_token: str
    refresh_token: None = Field(None, description="Staff access has no refresh token")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class StaffAccessResponse(BaseModel):
    tokens: StaffTokensOut
