"""Member use cases: role changes and removals under the permission rules (shared.permissions.may_hand_out)
and the last-owner rule."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import LastOwner, MemberNotFound
from shared.pagination import KeysetCursors
from shared.permissions import MEMBERS_MANAGE, OWNER_ROLE

from ..access import authorize_write, require_hand_out, require_live, resolve_role, role_permissions
from ..events import emit, membership_subject
from . import repository
from .repository import MemberRecord


class MemberService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str):
        self.pool = pool
        self.cursors = KeysetCursors(cursor_secret, "members", datetime, UUID)  # (joined_at, user_id)

    async def list(self, *, org_id: UUID, limit: int, cursor: str | None) -> tuple[list[MemberRecord], str | None]:
        cursors = self.cursors.bind(org=org_id)
        after = cursors.after(cursor)
        async with self.pool.acquire() as conn:
            await require_live(conn, org_id)
            rows = await repository.list_members(conn, organization_id=org_id, after=after, limit=limit + 1)
        return cursors.page(rows, limit, lambda r: (r.joined_at, r.user_id))

    async def change_role(self, ctx: RequestContext, principal: Principal, *, org_id: UUID, user_id: UUID,
                          role: str) -> MemberRecord:
        async with self.pool.acquire() as conn, conn.transaction():
            _, mine = await authorize_write(conn, principal, org_id, MEMBERS_MANAGE)
            target = await repository.get(conn, organization_id=org_id, user_id=user_id)
            if target is None:
                raise MemberNotFound()
            role, granted = await resolve_role(conn, org_id, role)
            require_hand_out(mine, await role_permissions(conn, org_id, target.role) or frozenset(),
                             "You may not change the role of this member (their role is beyond yours, or "
                             "admin level and you lack admins:manage).")
            require_hand_out(mine, granted, "You may not grant this role (it holds permissions you lack, or "
                                             "is admin level and you lack admins:manage).")
            if target.role != role:
                if target.role == OWNER_ROLE and await repository.count_owners(conn, organization_id=org_id) <= 1:
                    raise LastOwner()
                await repository.set_role(conn, organization_id=org_id, user_id=user_id, role=role)
                await emit(conn, ctx, principal, type="membership.role_changed", subject_type="membership",
                           subject_id=membership_subject(org_id, user_id), tenant_id=org_id,
                           data={"organization_id": str(org_id), "user_id": str(user_id),
                                 "old_role": target.role, "role": role,
                                 "permissions": sorted(granted)})
            changed = await repository.get_member(conn, organization_id=org_id, user_id=user_id)
            if changed is None:  # pragma: no cover - the membership is locked by this transaction
                raise LookupError("the membership vanished inside its own transaction")
            return changed

    async def remove(self, ctx: RequestContext, principal: Principal, *, org_id: UUID, user_id: UUID) -> None:
        leaving = user_id == principal.user_id
        async with self.pool.acquire() as conn, conn.transaction():
            _, mine = await authorize_write(conn, principal, org_id, None if leaving else MEMBERS_MANAGE)
            target = await repository.get(conn, organization_id=org_id, user_id=user_id)
            if target is None:
                raise MemberNotFound()
            if not leaving:
                require_hand_out(mine, await role_permissions(conn, org_id, target.role) or frozenset(),
                                 "You may not remove this member (their role is beyond yours, or admin level "
                                 "and you lack admins:manage).")
            if target.role == OWNER_ROLE and await repository.count_owners(conn, organization_id=org_id) <= 1:
                raise LastOwner()
            await repository.delete(conn, organization_id=org_id, user_id=user_id)
            await emit(conn, ctx, principal, type="membership.removed", subject_type="membership",
                       subject_id=membership_subject(org_id, user_id), tenant_id=org_id,
                       data={"organization_id": str(org_id), "user_id": str(user_id), "role": target.role})
