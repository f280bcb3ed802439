"""SQL of the audit log (append-only: the app role may insert and read, never change)."""
from __future__ import annotations

import asyncpg

from shared.messaging.envelope import Event
from shared.messaging.outbox import event_json


async def insert_audit_event(conn: asyncpg.Connection, event: Event) -> bool:
    """Append ``event``; False when a row with its id is already there.

    No conflict target on purpose: naming one needs SELECT on the row, and the read policy
    (one organization per transaction) would refuse it; the primary key is the only one.
    """
    status = await conn.execute(
        "INSERT INTO audit_event (id, tenant_id, type, occurred_at, actor_user_id, subject_type, subject_id, "
        "request_id, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) ON CONFLICT DO NOTHING",
        event.id, event.tenant_id, event.type, event.occurred_at, event.actor.user_id, event.subject.type,
        event.subject.id, event.request_id, event_json(event))
    return status.endswith(" 1")
