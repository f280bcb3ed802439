"""Every state change of tenant-service adds its event to the outbox in the change's own
transaction (shared.messaging.add_event)."""
from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.context import RequestContext
from shared.messaging import add_event

SOURCE = "tenant-service"


async def emit(conn: asyncpg.Connection, ctx: RequestContext, by: Principal | UUID | None, *, type: str,
               subject_type: str, subject_id: str | UUID, tenant_id: UUID | None, data: dict) -> None:
    """``by``: the verified caller, or (internal routes) the user the platform acts for."""
    await add_event(conn, source=SOURCE, type=type, subject_type=subject_type, subject_id=subject_id,
                    tenant_id=tenant_id, actor=ctx.actor(by), request_id=ctx.request_id, data=data)


def membership_subject(org_id: UUID, user_id: UUID) -> str:
    return f"{org_id}:{user_id}"
