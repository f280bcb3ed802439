"""Organization use cases; each one owns its transaction and adds its events to the outbox."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import OrganizationNotFound, SignupRollbackRefused, SlugTaken
from shared.pagination import KeysetCursors
from shared.permissions import BUILTIN_ROLES, ORGANIZATION_DELETE, ORGANIZATION_MANAGE
from shared.permissions import OWNER_ROLE as OWNER

from ..access import authorize_write
from ..events import emit, membership_subject
from ..members import repository as members
from ..users import repository as users
from . import repository, slugs
from .repository import MyOrganizationRecord, OrganizationRecord

SLUG_INDEX = "organization_slug_live_key"
SIGNUP_INDEX = "organization_signup_user_id_key"


class OrganizationService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str):
        self.pool = pool
        self.mine = KeysetCursors(cursor_secret, "my-organizations", datetime, UUID)  # (joined_at, id)
        self.everyone = KeysetCursors(cursor_secret, "admin-organizations", datetime, UUID)  # (created_at, id)

    # ------------------------------------------------------------ creation

    async def _insert_with_slug(self, conn: asyncpg.Connection, *, name: str, slug: str | None,
                                signup_user_id: UUID | None = None) -> OrganizationRecord:
        """An explicit slug that is taken is a 409; a derived one gets a suffix until free."""
        org_id = uuid.uuid4()
        tries = [slug] if slug else slugs.candidates(slugs.derive(name))
        for candidate in tries:
            try:
                async with conn.transaction():  # a savepoint: a taken slug does not spoil the outer transaction
                    return await repository.insert(conn, id=org_id, name=name, slug=candidate,
                                                   signup_user_id=signup_user_id)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != SLUG_INDEX:
                    raise
        raise SlugTaken(slug or slugs.derive(name))

    async def _created(self, conn: asyncpg.Connection, ctx: RequestContext, by: Principal | UUID,
                       org: OrganizationRecord, owner_id: UUID) -> None:
        await members.insert(conn, organization_id=org.id, user_id=owner_id, role=OWNER)
        await emit(conn, ctx, by, type="organization.created", subject_type="organization", subject_id=org.id,
                   tenant_id=org.id, data={"name": org.name, "slug": org.slug})
        await emit(conn, ctx, by, type="membership.created", subject_type="membership",
                   subject_id=membership_subject(org.id, owner_id), tenant_id=org.id,
                   data={"organization_id": str(org.id), "user_id": str(owner_id), "role": OWNER,
                         "permissions": sorted(BUILTIN_ROLES[OWNER])})

    async def create(self, ctx: RequestContext, principal: Principal, *, name: str,
                     slug: str | None) -> OrganizationRecord:
        async with self.pool.acquire() as conn, conn.transaction():
            org = await self._insert_with_slug(conn, name=name, slug=slug)
            await self._created(conn, ctx, principal, org, principal.user_id)
        return replace(org, member_count=1)

    async def create_for_signup(self, ctx: RequestContext, *, owner_id: UUID, owner_email: str, owner_name: str,
                                name: str) -> OrganizationRecord:
        """Idempotent per owner: a retried signup gets the organization it already created."""
        async with self.pool.acquire() as conn, conn.transaction():
            await users.upsert(conn, user_id=owner_id, email=owner_email, name=owner_name,
                               changed_at=datetime.now(UTC))
            existing = await repository.find_by_signup_user(conn, user_id=owner_id)
            if existing is not None:
                return existing
            try:
                async with conn.transaction():
                    org = await self._insert_with_slug(conn, name=name, slug=None, signup_user_id=owner_id)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != SIGNUP_INDEX:
                    raise
                # A concurrent identical call won the race and has committed by now.
                winner = await repository.find_by_signup_user(conn, user_id=owner_id)
                if winner is None:  # the winner's organization is already gone again
                    raise
                return winner
            await self._created(conn, ctx, owner_id, org, owner_id)
        return org

    async def delete_signup(self, ctx: RequestContext, *, org_id: UUID, owner_id: UUID) -> None:
        """Compensation for a signup that failed after its organization was created. Only that
        signup's organization, and only while its owner is its only member, is removed (for
        good); an organization already gone is not an error, so the call can be retried."""
        async with self.pool.acquire() as conn, conn.transaction():
            exists, signup_user_id = await repository.get_signup_user(conn, org_id=org_id, for_update=True)
            if not exists:
                return
            if signup_user_id != owner_id:
                raise SignupRollbackRefused("This organization was not created by that user's signup.")
            only = await members.get(conn, organization_id=org_id, user_id=owner_id)
            if only is None or await members.count(conn, organization_id=org_id) != 1:
                raise SignupRollbackRefused("The organization has other members; it is no longer a failed signup.")
            await emit(conn, ctx, owner_id, type="membership.removed", subject_type="membership",
                       subject_id=membership_subject(org_id, owner_id), tenant_id=org_id,
                       data={"organization_id": str(org_id), "user_id": str(owner_id), "role": only.role})
            await emit(conn, ctx, owner_id, type="organization.deleted", subject_type="organization",
                       subject_id=org_id, tenant_id=org_id, data={})
            await repository.hard_delete(conn, org_id=org_id)

    # ------------------------------------------------------------ reads

    async def get(self, *, org_id: UUID) -> OrganizationRecord:
        async with self.pool.acquire() as conn:
            org = await repository.get_live_with_count(conn, org_id=org_id)
        if org is None:
            raise OrganizationNotFound()
        return org

    async def list_mine(self, *, user_id: UUID, limit: int, cursor: str | None
                        ) -> tuple[list[MyOrganizationRecord], str | None]:
        cursors = self.mine.bind(user=user_id)
        after = cursors.after(cursor)
        async with self.pool.acquire() as conn:
            rows = await repository.list_for_user(conn, user_id=user_id, after=after, limit=limit + 1)
        return cursors.page(rows, limit, lambda r: (r.joined_at, r.id))

    async def list_all(self, *, q: str | None, limit: int, cursor: str | None
                       ) -> tuple[list[repository.AdminOrganizationRecord], str | None]:
        everyone = self.everyone.bind(q=q)
        after = everyone.after(cursor)
        async with self.pool.acquire() as conn:
            rows = await repository.list_all(conn, q=q, after=after, limit=limit + 1)
        return everyone.page(rows, limit, lambda r: (r.created_at, r.id))

    async def get_any(self, *, org_id: UUID) -> repository.AdminOrganizationRecord:
        """An organization, live or deleted (its ``deleted_at`` says which)."""
        async with self.pool.acquire() as conn:
            org = await repository.get_any(conn, org_id=org_id)
        if org is None:
            raise OrganizationNotFound()
        return org

    async def memberships_of(self, *, user_id: UUID) -> list[members.MembershipPermissions]:
        async with self.pool.acquire() as conn:
            return await members.list_for_user(conn, user_id=user_id)

    # ------------------------------------------------------------ changes

    async def update(self, ctx: RequestContext, principal: Principal, *, org_id: UUID, name: str | None,
                     slug: str | None) -> OrganizationRecord:
        async with self.pool.acquire() as conn, conn.transaction():
            org, _ = await authorize_write(conn, principal, org_id, ORGANIZATION_MANAGE)
            changes = {}
            if name is not None and name != org.name:
                changes["name"] = [org.name, name]
            if slug is not None and slug != org.slug:
                changes["slug"] = [org.slug, slug]
            if changes:
                try:
                    async with conn.transaction():
                        org = await repository.update(conn, org_id=org_id, name=name or org.name,
                                                      slug=slug or org.slug)
                except asyncpg.UniqueViolationError as exc:
                    if exc.constraint_name != SLUG_INDEX:
                        raise
                    raise SlugTaken(slug or org.slug) from None
                await emit(conn, ctx, principal, type="organization.updated", subject_type="organization",
                           subject_id=org_id, tenant_id=org_id, data={"changes": changes})
            count = await members.count(conn, organization_id=org_id)
        return replace(org, member_count=count)

    async def delete(self, ctx: RequestContext, principal: Principal, *, org_id: UUID) -> None:
        """Soft delete: the organization disappears for everyone. auth-service ends the sessions
        scoped to it and ticket-service hides its tickets, both on organization.deleted."""
        async with self.pool.acquire() as conn, conn.transaction():
            await authorize_write(conn, principal, org_id, ORGANIZATION_DELETE)
            await repository.soft_delete(conn, org_id=org_id)
            await emit(conn, ctx, principal, type="organization.deleted", subject_type="organization",
                       subject_id=org_id, tenant_id=org_id, data={})
