from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


class SecurityEventOut(BaseModel):
    id: UUID
    type: str
    occurred_at: datetime
    ip: str | None
    user_agent: str | None


class SecurityEventPage(BaseModel):
    items: list[SecurityEventOut]
    next_cursor: str | None
