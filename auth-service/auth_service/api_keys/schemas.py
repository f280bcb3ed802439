from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from shared.web import RequestModel

API_KEY_PREFIX = "sk_"
PREFIX_LENGTH = 12


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    permissions: list[str] = Field(min_length=1, max_length=64,
                                   description="Permission names from GET /v1/permissions; a subset of the caller's")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Without it the key does not expire")

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class ApiKeyOut(BaseModel):
    id: UUID
    name: str
    prefix: str = Field(description="The key's first 12 characters: how it is named in lists and logs")
    permissions: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself, shown only in this answer (stored only as a hash)")


class ResolveRequest(RequestModel):
    key: str = Field(min_length=1, max_length=128)


class ResolveResponse(BaseModel):
    access_token: str
    expires_in: int


class UsageItem(RequestModel):
    id: UUID
    used_at: int = Field(ge=0, description="epoch milliseconds")


class UsageReport(RequestModel):
    items: list[UsageItem] = Field(max_length=100000)
