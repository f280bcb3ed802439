"""Request and response models of the invitation routes."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, EmailStr, StringConstraints, field_validator

from shared.pagination import PageQuery
from shared.web import RequestModel

from ..organizations.schemas import Role


class InvitationCreate(RequestModel):
    email: EmailStr
    role: Role

    @field_validator("email", mode="before")
    @classmethod
    def _trim(cls, v):
        return v.strip() if isinstance(v, str) else v

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()  # emails are case-insensitive (API.md)


class InvitationCreated(BaseModel):
    id: UUID
    email: str
    role: Role
    token: str  # shown once; only its hash is stored
    expires_at: datetime


class Invitation(BaseModel):
    id: UUID
    email: str
    role: Role
    invited_by: UUID
    created_at: datetime
    expires_at: datetime


class InvitationAccept(RequestModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class InvitationListQuery(PageQuery):
    pass
