from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from shared.web import NOT_BLANK_SCHEMA, RequestModel


class StaffAccessRequest(RequestModel):
    organization_id: UUID
    reason: str = Field(min_length=1, max_length=500, description="Why; recorded in the organization's audit log",
                        json_schema_extra=NOT_BLANK_SCHEMA)

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
