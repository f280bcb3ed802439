"""Platform staff's list of organizations: the query and the item of ``GET /v1/admin/organizations``
(auth-service, which checks the caller is staff) and of ``GET /internal/organizations``
(tenant-service, which it forwards to), defined once for both sides of the call."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from .pagination import PageQuery


class AdminOrganizationQuery(PageQuery):
    q: str | None = Field(None, min_length=1, max_length=100, description="Matches the name or slug")


class AdminOrganizationOut(BaseModel):
    """An organization as platform staff see it, live or deleted (``deleted_at`` says which)."""
    id: UUID
    name: str
    slug: str
    created_at: datetime
    deleted_at: datetime | None
    member_count: int
