"""Keeps user profiles (email, name) in step with auth-service: consumes user.registered."""
from __future__ import annotations

import asyncpg

from shared.messaging import Event, event_data
from shared.messaging.catalog import UserRegistered
from shared.web import canonical_email

from ..users import repository as users

BINDINGS = ["user.registered"]


async def handle_user_event(conn: asyncpg.Connection, event: Event) -> None:
    if event.type != "user.registered":
        return
    data = event_data(event, UserRegistered)  # MalformedEvent: dead-lettered (shared.messaging.poison)
    # The event's time orders the changes: a redelivered or late event never undoes a newer one.
    await users.upsert(conn, user_id=data.user_id, email=canonical_email(data.email), name=data.name,
                       changed_at=event.occurred_at)
