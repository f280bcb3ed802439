"""Invitation use cases. A token is 256 random bits, returned once at creation and stored
only as its sha256; it is single use, bound to the invited email, and expires."""
from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import (
    AccountGone,
    AlreadyMember,
    InvitationEmailMismatch,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
)
from shared.mail import Mailer
from shared.pagination import KeysetCursors
from shared.permissions import MEMBERS_INVITE

from ..access import authorize_write, require_hand_out, require_live, resolve_role, role_permissions
from ..accounts.client import AccountsClient
from ..events import emit, membership_subject
from ..members import repository as members
from ..members.repository import MembershipRecord
from ..organizations import repository as organizations
from ..users import repository as users
from . import repository
from .repository import InvitationRecord


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class InvitationService:
    def __init__(self, pool: asyncpg.Pool, *, cursor_secret: str, ttl_s: int, accounts: AccountsClient,
                 mailer: Mailer | None = None):
        self.pool, self.ttl_s, self.accounts = pool, ttl_s, accounts
        self.cursors = KeysetCursors(cursor_secret, "invitations", datetime, UUID)  # (created_at, id)
        self.mailer = mailer

    async def create(self, ctx: RequestContext, principal: Principal, *, org_id: UUID, email: str,
                     role: str) -> tuple[InvitationRecord, str]:
        token = secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            _, mine = await authorize_write(conn, principal, org_id, MEMBERS_INVITE)
            role, granted = await resolve_role(conn, org_id, role)
            require_hand_out(mine, granted, "You may not invite with this role (it holds permissions you lack, "
                                             "or is admin level and you lack admins:manage).")
            if await repository.email_is_member(conn, organization_id=org_id, email=email):
                raise AlreadyMember("A member with this email already belongs to the organization.")
            inv = await repository.insert(conn, id=uuid.uuid4(), organization_id=org_id, email=email, role=role,
                                          token_hash=hash_token(token), invited_by=principal.user_id,
                                          ttl_s=self.ttl_s)
            await emit(conn, ctx, principal, type="invitation.created", subject_type="invitation", subject_id=inv.id,
                       tenant_id=org_id, data={"email": email, "role": role})
            if self.mailer is not None:
                # The invitee's email commits with the invitation (sent by the mail sender).
                org = await organizations.get_live(conn, org_id=org_id)
                await self.mailer.enqueue(conn, template="invitation", to=email, context={
                    "organization_name": org.name if org else "an organization", "role": role, "email": email,
                    "expires_at": inv.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                    "link": self.mailer.link("accept-invitation", token)})
        return inv, token

    async def list_pending(self, *, org_id: UUID, limit: int, cursor: str | None
                           ) -> tuple[list[InvitationRecord], str | None]:
        cursors = self.cursors.bind(org=org_id)
        after = cursors.after(cursor)
        async with self.pool.acquire() as conn:
            await require_live(conn, org_id)
            rows = await repository.list_pending(conn, organization_id=org_id, after=after, limit=limit + 1)
        return cursors.page(rows, limit, lambda r: (r.created_at, r.id))

    async def revoke(self, ctx: RequestContext, principal: Principal, *, org_id: UUID, invitation_id: UUID) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            _, mine = await authorize_write(conn, principal, org_id, MEMBERS_INVITE)
            inv = await repository.get(conn, organization_id=org_id, invitation_id=invitation_id, for_update=True)
            if inv is None or inv.accepted_at or inv.revoked_at or inv.expired:
                raise InvitationNotFound("No such pending invitation.")
            require_hand_out(mine, await role_permissions(conn, org_id, inv.role) or frozenset(),
                             "You may not revoke an invitation to this role (it holds permissions you lack, or "
                             "is admin level and you lack admins:manage).")
            await repository.mark_revoked(conn, invitation_id=inv.id)
            await emit(conn, ctx, principal, type="invitation.revoked", subject_type="invitation", subject_id=inv.id,
                       tenant_id=org_id, data={"email": inv.email, "role": inv.role})

    async def caller_profile(self, principal: Principal, *, request_id: str | None = None) -> users.ProfileRecord:
        """The caller's profile: the local copy kept from ``user.registered``, or, while that
        event is still in flight, auth-service's own (then stored, so the event finds it and
        changes nothing). Fetched before any transaction: no connection waits on HTTP."""
        async with self.pool.acquire() as conn:
            profile = await users.get(conn, user_id=principal.user_id)
        if profile is not None:
            return profile
        account = await self.accounts.get(principal.user_id, request_id=request_id)  # 503 if unreachable
        if account is None:
            # A valid token for an account auth-service no longer has: the caller is gone.
            raise AccountGone()
        async with self.pool.acquire() as conn:
            await users.upsert(conn, user_id=account.id, email=account.email, name=account.name,
                               changed_at=account.created_at)
            stored = await users.get(conn, user_id=account.id)  # the upsert's row, or a newer one
        if stored is None:
            raise LookupError("the user profile upserted just before is missing")
        return stored

    async def accept(self, ctx: RequestContext, principal: Principal, *, token: str) -> MembershipRecord:
        """Unknown, revoked and expired tokens are 404; a used one is 409; a token for another
        email than the caller's is 403 (its holder was sent it, so saying so leaks nothing);
        a caller who already belongs to the organization is 409. The caller's email comes from
        ``caller_profile``: it never depends on an event still in flight."""
        token_hash = hash_token(token)
        if await self._find(token_hash) is None:
            raise InvitationNotFound()
        profile = await self.caller_profile(principal, request_id=ctx.request_id)
        async with self.pool.acquire() as conn, conn.transaction():
            found = await repository.find_by_token_hash(conn, token_hash=token_hash)
            if found is None:
                raise InvitationNotFound()
            # Lock order organization -> invitation, as in every other write, so no deadlock.
            if await organizations.get_live(conn, org_id=found.organization_id, for_update=True) is None:
                raise InvitationNotFound()
            inv = await repository.find_by_token_hash(conn, token_hash=token_hash, for_update=True)
            if inv is None:  # removed between the two reads
                raise InvitationNotFound()
            if inv.accepted_at is not None:
                raise InvitationUsed()
            if inv.revoked_at is not None:
                raise InvitationRevoked()
            if inv.expired:
                raise InvitationExpired()
            if profile.email != inv.email:
                raise InvitationEmailMismatch()
            if await members.get(conn, organization_id=inv.organization_id, user_id=principal.user_id):
                raise AlreadyMember("You already belong to this organization.")
            membership = await members.insert(conn, organization_id=inv.organization_id, user_id=principal.user_id,
                                              role=inv.role)
            await repository.mark_accepted(conn, invitation_id=inv.id, user_id=principal.user_id)
            await emit(conn, ctx, principal, type="invitation.accepted", subject_type="invitation", subject_id=inv.id,
                       tenant_id=inv.organization_id,
                       data={"email": inv.email, "role": inv.role, "user_id": str(principal.user_id)})
            await emit(conn, ctx, principal, type="membership.created", subject_type="membership",
                       subject_id=membership_subject(inv.organization_id, principal.user_id),
                       tenant_id=inv.organization_id,
                       data={"organization_id": str(inv.organization_id), "user_id": str(principal.user_id),
                             "role": inv.role, "permissions": sorted(
                                 await role_permissions(conn, inv.organization_id, inv.role) or ())})
        return membership

    async def _find(self, token_hash: bytes) -> InvitationRecord | None:
        async with self.pool.acquire() as conn:
            return await repository.find_by_token_hash(conn, token_hash=token_hash)
