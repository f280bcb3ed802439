"""What the audit consumer does with one event (inside the consumer's transaction, next to the
inbox row, so a redelivery adds nothing)."""
from __future__ import annotations

import asyncpg

from shared.messaging.envelope import Event

from .repository import insert_audit_event

AUDIT_BINDINGS = ["#"]  # every event type


async def record_event(conn: asyncpg.Connection, event: Event) -> None:
    await insert_audit_event(conn, event)
