"""Membership and organization changes from tenant-service, turned into revocation marks.

``rv:ut:{user}:{org}`` / ``rv:t:{org}`` / ``rv:r:{org}:{role name}`` (custom roles) hold the
time (epoch ms) before which tokens are stale. The mark is PostgreSQL's clock when this consumer
applies the event, not the event's own ``occurred_at`` (taken inside tenant-service's
transaction, before its commit: a membership read between that moment and the commit still saw
the old state). The event is published after tenant-service committed, so the mark is later than
any read of the old membership, and every access token carries as ``iat_ms`` PostgreSQL's clock
taken BEFORE its membership was read (auth_service.revocation): a token minted from the old state
is always older than the mark.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from shared.context import RequestContext
from shared.messaging import Event, MalformedEvent, event_data, organization_of
from shared.messaging.catalog import MembershipRemoved, MembershipRoleChanged, RoleDeleted, RoleUpdated

from ..api_keys.service import ApiKeyService
from ..revocation import Revocations, db_clock_ms
from ..sessions.service import SessionService

GROUP = "auth-service.memberships"
BINDINGS = ["membership.role_changed", "membership.removed", "organization.deleted", "role.updated", "role.deleted"]


def membership_handler(sessions: SessionService, revocations: Revocations,
                       api_keys: ApiKeyService | None = None) -> Callable[[asyncpg.Connection, Event], Awaitable[None]]:
    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        # An event without what it needs raises MalformedEvent: dead-lettered (shared.messaging.poison).
        if event.type == "membership.role_changed":
            changed = event_data(event, MembershipRoleChanged)
            user_id, organization_id = changed.user_id, changed.organization_id
        elif event.type == "membership.removed":
            removed = event_data(event, MembershipRemoved)
            user_id, organization_id = removed.user_id, removed.organization_id
        elif event.type == "organization.deleted":
            organization_id = organization_of(event)
        elif event.type in ("role.updated", "role.deleted"):
            # Tokens carry the role's name (``role``) and permissions (``perms``): a change of
            # either makes every token of the old name stale; a description change does not.
            organization_id = organization_of(event)
            role = event_data(event, RoleUpdated if event.type == "role.updated" else RoleDeleted)
            changes = role.changes if isinstance(role, RoleUpdated) else {}
            if event.type == "role.updated" and not ({"name", "permissions"} & set(changes)):
                return
            role_name = changes["name"][0] if "name" in changes else role.name
            if not isinstance(role_name, str) or not role_name:
                raise MalformedEvent(f"{event.type}: data.changes.name: not the old role name")
        else:
            return
        # The mark is recorded and Redis written inside the inbox transaction: if either fails,
        # the event is retried.
        mark_ms = await db_clock_ms(conn)
        if event.type in ("role.updated", "role.deleted"):
            await revocations.mark_role(conn, organization_id, role_name, mark_ms)
        elif event.type == "organization.deleted":
            await revocations.mark_org(conn, organization_id, mark_ms)
            info = RequestContext(request_id=event.request_id, ip=None)
            await sessions.end_organization_sessions(conn, info, organization_id=organization_id,
                                                     now=sessions.now())
            if api_keys is not None:
                # A deleted organization's keys never resolve again (rv:ak stops cached ones).
                await api_keys.revoke_organization(conn, organization_id)
        else:
            await revocations.mark_user_org(conn, user_id, organization_id, mark_ms)
    return handle
