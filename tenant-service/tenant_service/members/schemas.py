"""Request and response models of the member routes."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from shared.web import RequestModel

from ..organizations.schemas import Role


class Member(BaseModel):
    user_id: UUID
    email: str | None  # null until the user's profile has reached this service
    name: str | None
    role: Role
    joined_at: datetime


class MemberRoleUpdate(RequestModel):
    role: Role


class Membership(BaseModel):
    organization_id: UUID
    user_id: UUID
    role: Role
    joined_at: datetime

