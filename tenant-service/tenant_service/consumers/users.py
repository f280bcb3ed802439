"""Keeps user profiles (email, name) in step with auth-service: consumes user.registered."""
from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from pydantic import BaseModel, BeforeValidator, ValidationError

from shared.messaging import Event
from shared.web import normalize_email

from ..users import repository as users

BINDINGS = ["user.registered"]


class UserRegistered(BaseModel):
    user_id: UUID
    email: Annotated[str, BeforeValidator(normalize_email)]
    name: str


async def handle_user_event(conn: asyncpg.Connection, event: Event) -> None:
    if event.type != "user.registered":
        return
    try:
        data = UserRegistered.model_validate(event.data)
    except ValidationError:
        # Raised, not skipped: after its retries the consumer parks it in the group's DLQ,
        # where an operator sees it.
        raise ValueError(f"user.registered {event.id} has no usable user_id/email/name") from None
    # The event's time orders the changes: a redelivered or late event never undoes a newer one.
    await users.upsert(conn, user_id=data.user_id, email=data.email, name=data.name, changed_at=event.occurred_at)
