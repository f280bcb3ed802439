"""The event envelope of the public contract (API.md, "Events")."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Actor(BaseModel):
    user_id: UUID | None = None
    ip: str | None = None


class Subject(BaseModel):
    type: str
    id: str


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    type: str
    version: int = 1
    occurred_at: datetime
    source: str
    tenant_id: UUID | None = None
    actor: Actor
    subject: Subject
    request_id: str | None = None
    data: dict[str, Any]
