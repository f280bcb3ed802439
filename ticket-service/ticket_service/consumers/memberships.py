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
from typing import Annotated
from uuid import UUID

import asyncpg
from pydantic import BaseModel, StringConstraints, ValidationError

from shared.config import BaseServiceSettings
from shared.messaging import Event
from shared.messaging.consumer import consumer_ctx
from shared.permissions import BUILTIN_ROLES

from ..memberships import repository as memberships

log = logging.getLogger(__name__)

BINDINGS = ["membership.*", "organization.deleted", "role.updated"]


class MembershipData(BaseModel):
    organization_id: UUID
    user_id: UUID
    role: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    # What the role grants (tenant-service sends it since custom roles); older events without
    # it name a built-in role, whose set applies.
    permissions: list[str] | None = None

    def granted(self) -> list[str] | None:
        if self.permissions is not None:
            return sorted(self.permissions)
        builtin = BUILTIN_ROLES.get(self.role)
        return None if builtin is None else sorted(builtin)


class RoleUpdatedData(BaseModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    permissions: list[str]
    changes: dict = {}


async def handle_event(conn: asyncpg.Connection, event: Event) -> None:
    """Runs in the consumer's transaction, next to the inbox row of ``event``."""
    if event.type == "organization.deleted":
        org_id = event.tenant_id
        if org_id is None:
            try:
                org_id = UUID(event.subject.id)
            except ValueError:
                log.warning("organization.deleted without an organization id skipped",
                            extra={"event_id": str(event.id)})
                return
        await memberships.scope_to_organization(conn, org_id=org_id)
        await memberships.mark_organization_deleted(conn, org_id=org_id, deleted_at=event.occurred_at)
        return
    if event.type == "role.updated":
        await _apply_role_update(conn, event)
        return
    if event.type not in ("membership.created", "membership.role_changed", "membership.removed"):
        return
    try:
        data = MembershipData.model_validate(event.data)
    except ValidationError:
        # Retrying cannot fix a malformed event: record it as handled and move on.
        log.warning("malformed membership event skipped", extra={"event_id": str(event.id), "event_type": event.type})
        return
    granted = data.granted()
    if granted is None and event.type != "membership.removed":
        log.warning("membership event without permissions for a custom role skipped",
                    extra={"event_id": str(event.id), "event_type": event.type})
        return
    await memberships.scope_to_organization(conn, org_id=data.organization_id)
    applied = await memberships.apply_membership(
        conn, org_id=data.organization_id, user_id=data.user_id, role=data.role, permissions=granted or [],
        active=event.type != "membership.removed", event_at=event.occurred_at)
    if not applied:
        log.info("older membership event ignored", extra={"event_id": str(event.id), "event_type": event.type})


async def _apply_role_update(conn: asyncpg.Connection, event: Event) -> None:
    """Holders of a renamed or re-permissioned custom role follow it. (A role.updated that
    overtakes an older membership event of one holder is overwritten by it when that arrives:
    the holder keeps the older set until the role or the membership changes again.)"""
    try:
        data = RoleUpdatedData.model_validate(event.data)
        old_name = data.changes["name"][0] if "name" in data.changes else data.name
        if event.tenant_id is None or not isinstance(old_name, str):
            raise ValueError
    except (ValidationError, ValueError, TypeError, KeyError, IndexError):
        log.warning("malformed role event skipped", extra={"event_id": str(event.id), "event_type": event.type})
        return
    await memberships.scope_to_organization(conn, org_id=event.tenant_id)
    await memberships.apply_role_change(conn, old_name=old_name, name=data.name, permissions=sorted(data.permissions))


def membership_consumer_ctx(settings: BaseServiceSettings, *, group: str, key=None):
    return consumer_ctx(settings, group=group, bindings=BINDINGS, handler=handle_event, key=key)
