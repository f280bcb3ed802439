"""Every state change of tenant-service adds its event to the outbox in the change's own
transaction (shared.messaging.add_event)."""
from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.messaging import add_event

from .context import Actor

SOURCE = "tenant-service"


async def emit(conn: asyncpg.Connection, actor: Actor, *, type: str, subject_type: str, subject_id: str | UUID,
               tenant_id: UUID | None, data: dict) -> None:
    await add_event(conn, source=SOURCE, type=type, subject_type=subject_type, subject_id=subject_id,
                    tenant_id=tenant_id, actor=actor.event,
                    request_id=actor.request_id, data=data)


def membership_subject(org_id: UUID, user_id: UUID) -> str:
    return f"{org_id}:{user_id}"
