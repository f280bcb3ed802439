"""Keeps user profiles (email, name) in step with auth-service: consumes user.registered."""
from __future__ import annotations

import logging
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ValidationError, field_validator

from shared.messaging import Event

from ..users import repository as users

log = logging.getLogger(__name__)

BINDINGS = ["user.registered"]


class UserRegistered(BaseModel):
    user_id: UUID
    email: str
    name: str

    @field_validator("email")
    @classmethod
    def _normalise(cls, v: str) -> str:
        return v.strip().lower()


async def handle_user_event(conn: asyncpg.Connection, event: Event) -> None:
    if event.type != "user.registered":
        return
    try:
        data = UserRegistered.model_validate(event.data)
    except ValidationError:
        # Retrying cannot fix a malformed event; record it as processed and say so.
        log.error("user.registered without usable data skipped", extra={"event_id": str(event.id)})
        return
    # The event's time orders the changes: a redelivered or late event never undoes a newer one.
    await users.upsert(conn, user_id=data.user_id, email=data.email, name=data.name, changed_at=event.occurred_at)
