"""Request and response models of the invitation routes."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, EmailStr, StringConstraints

from shared.web import RequestModel, normalize_email

from ..organizations.schemas import Role


class InvitationCreate(RequestModel):
    email: Annotated[EmailStr, BeforeValidator(normalize_email)]
    role: Role


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

