"""The event envelope of the public contract (API.md, "Events")."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

if TYPE_CHECKING:
    from ..auth import Principal


class Actor(BaseModel):
    """Who caused an event. ``api_key_id`` (an API key acted) and ``staff`` (platform staff with
    read-only access) appear only when set, so the envelope of a user's event is unchanged.
    Built from the verified caller by ``actor_of``, the one place that does it."""
    user_id: UUID | None = None
    ip: str | None = None
    api_key_id: UUID | None = None
    staff: bool = False

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if out.get("api_key_id") is None:
            out.pop("api_key_id", None)
        if not out.get("staff"):
            out.pop("staff", None)
        return out


def actor_of(principal: Principal | None, *, ip: str | None, user_id: UUID | None = None) -> Actor:
    """The event actor of a verified caller: its user (none for an API key, which acts as itself),
    the key, and the staff mark. Without a principal (internal calls), ``user_id`` names the user
    the platform acts for."""
    if principal is None:
        return Actor(user_id=user_id, ip=ip)
    return Actor(user_id=None if principal.api_key_id else principal.user_id, ip=ip,
                 api_key_id=principal.api_key_id, staff=principal.staff)


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
