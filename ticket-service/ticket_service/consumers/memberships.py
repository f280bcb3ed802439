"""Keeps the local membership read model from tenant-service's events.

Ticket routes must not call tenant-service to validate an assignee (a request would then fail
whenever tenant-service is down), so the service keeps its own copy: who is a member of which
organization with which role, and which organizations are deleted.

Delivery is at least once and in any order. The consumer's inbox drops duplicates; each
membership row keeps the occurred_at of the newest event applied to it, and an older event
arriving late is ignored. A removal leaves an inactive row for the same reason.
"""
from __future__ import annotations

import logging
from typing import Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ValidationError

from shared.config import BaseServiceSettings
from shared.messaging import Event
from shared.messaging.consumer import consumer_ctx

from ..memberships import repository as memberships

log = logging.getLogger(__name__)

BINDINGS = ["membership.*", "organization.deleted"]


class MembershipData(BaseModel):
    organization_id: UUID
    user_id: UUID
    role: Literal["member", "agent", "admin", "owner"]


async def handle_event(conn: asyncpg.Connection, event: Event) -> None:
    """Runs in the consumer's transaction, next to the inbox row of ``event``."""
    if event.type == "organization.deleted":
        org_id = event.tenant_id
        if org_id is None:
            try:
                org_id = UUID(event.subject.id)
            except ValueError:
                log.warning("organization.deleted without an organization id skipped", extra={"event_id": str(event.id)})
                return
        await memberships.scope_to_organization(conn, org_id=org_id)
        await memberships.mark_organization_deleted(conn, org_id=org_id, deleted_at=event.occurred_at)
        return
    if event.type not in ("membership.created", "membership.role_changed", "membership.removed"):
        return
    try:
        data = MembershipData.model_validate(event.data)
    except ValidationError:
        # Retrying cannot fix a malformed event: record it as handled and move on.
        log.warning("malformed membership event skipped", extra={"event_id": str(event.id), "event_type": event.type})
        return
    await memberships.scope_to_organization(conn, org_id=data.organization_id)
    applied = await memberships.apply_membership(
        conn, org_id=data.organization_id, user_id=data.user_id, role=data.role,
        active=event.type != "membership.removed", event_at=event.occurred_at)
    if not applied:
        log.info("older membership event ignored", extra={"event_id": str(event.id), "event_type": event.type})


def membership_consumer_ctx(settings: BaseServiceSettings, *, group: str, key=None):
    return consumer_ctx(settings, group=group, bindings=BINDINGS, handler=handle_event, key=key)
