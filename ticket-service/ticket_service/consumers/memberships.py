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
from uuid import UUID

import asyncpg

from shared.config import BaseServiceSettings
from shared.messaging import Event, MalformedEvent, event_data, organization_of
from shared.messaging.catalog import MembershipCreated, MembershipRemoved, MembershipRoleChanged, RoleUpdated
from shared.messaging.consumer import consumer_ctx
from shared.permissions import BUILTIN_ROLES

from ..memberships import repository as memberships

log = logging.getLogger(__name__)

BINDINGS = ["membership.*", "organization.deleted", "role.updated"]


def _membership(event: Event) -> tuple[UUID, UUID, str, list[str] | None]:
    """(organization, user, role, what the role grants) of a membership event. ``permissions``
    came with custom roles; an older event without it names a built-in role, whose set applies."""
    data: MembershipCreated | MembershipRoleChanged | MembershipRemoved
    if event.type == "membership.created":
        data = event_data(event, MembershipCreated)
    elif event.type == "membership.role_changed":
        data = event_data(event, MembershipRoleChanged)
    else:
        data = event_data(event, MembershipRemoved)
    permissions = getattr(data, "permissions", None)
    if permissions is not None:
        return data.organization_id, data.user_id, data.role, sorted(permissions)
    builtin = BUILTIN_ROLES.get(data.role)
    return data.organization_id, data.user_id, data.role, None if builtin is None else sorted(builtin)


async def handle_event(conn: asyncpg.Connection, event: Event) -> None:
    """Runs in the consumer's transaction, next to the inbox row of ``event``. An event without
    what it needs raises MalformedEvent: dead-lettered (shared.messaging.poison)."""
    if event.type == "organization.deleted":
        org_id = organization_of(event)
        await memberships.scope_to_organization(conn, org_id=org_id)
        await memberships.mark_organization_deleted(conn, org_id=org_id, deleted_at=event.occurred_at)
        return
    if event.type == "role.updated":
        await _apply_role_update(conn, event)
        return
    if event.type not in ("membership.created", "membership.role_changed", "membership.removed"):
        return
    org_id, user_id, role, granted = _membership(event)
    if granted is None and event.type != "membership.removed":
        raise MalformedEvent(f"{event.type}: data.permissions: required for the custom role")
    await memberships.scope_to_organization(conn, org_id=org_id)
    applied = await memberships.apply_membership(
        conn, org_id=org_id, user_id=user_id, role=role, permissions=granted or [],
        active=event.type != "membership.removed", event_at=event.occurred_at)
    if not applied:
        log.info("older membership event ignored", extra={"event_id": str(event.id), "event_type": event.type})


async def _apply_role_update(conn: asyncpg.Connection, event: Event) -> None:
    """Holders of a renamed or re-permissioned custom role follow it. (A role.updated that
    overtakes an older membership event of one holder is overwritten by it when that arrives:
    the holder keeps the older set until the role or the membership changes again.)"""
    org_id = organization_of(event)
    data = event_data(event, RoleUpdated)
    old_name = data.changes["name"][0] if "name" in data.changes else data.name
    if not isinstance(old_name, str) or not old_name:
        raise MalformedEvent(f"{event.type}: data.changes.name: not the old role name")
    await memberships.scope_to_organization(conn, org_id=org_id)
    await memberships.apply_role_change(conn, old_name=old_name, name=data.name, permissions=sorted(data.permissions))


def membership_consumer_ctx(settings: BaseServiceSettings, *, group: str, key=None):
    return consumer_ctx(settings, group=group, bindings=BINDINGS, handler=handle_event, key=key)
