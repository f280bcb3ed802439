"""Accounts: signup (with its organization, all or nothing), the caller's profile, password change."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg
from aiohttp import web

from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import CurrentPasswordIncorrect, EmailTaken, PasswordUnchanged
from shared.messaging import add_event

from ..account import repository as account_repo
from ..config import Settings
from ..revocation import db_clock_ms
from ..security_log import record_event
from ..sessions.service import SessionEnded, SessionService
from ..sessions.throttle import LoginThrottle
from ..tenants.client import Organization, TenantClient
from ..tokens.schemas import TokensOut
from . import repository as repo
from .passwords import PasswordHasher
from .repository import User
from .schemas import MeOut, PasswordChangeRequest, SignupRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignupResult:
    user: User
    organization: Organization | None
    tokens: TokensOut


class UserService:
    def __init__(self, *, pool: asyncpg.Pool, settings: Settings, hasher: PasswordHasher, throttle: LoginThrottle,
                 tenant: TenantClient, sessions: SessionService, accounts=None):
        self.pool, self.settings, self.hasher, self.throttle = pool, settings, hasher, throttle
        self.tenant, self.sessions = tenant, sessions
        self.accounts = accounts  # account.service.AccountService: the verification email at signup

    async def signup(self, body: SignupRequest, info: RequestContext) -> SignupResult:
        password_hash = await self.hasher.hash(body.password)
        user_id = uuid4()
        organization: Organization | None = None
        # No pooled connection and no transaction is held across the call to tenant-service
        # (a slow tenant-service must not drain this pool): a taken email is refused first,
        # the organization is created next, and only then the account, its first session and
        # its events commit together. A failure after the organization exists deletes it again
        # (compensation), so no half-made signup remains and a retry starts afresh.
        async with self.pool.acquire() as conn:
            if await repo.get_by_email(conn, email=body.email) is not None:
                raise EmailTaken()
            # iat_ms on the revocation marks' clock, before the organization (and so the owner's
            # membership) exists (auth_service.revocation).
            as_of_ms = await db_clock_ms(conn)
        try:
            if body.organization_name is not None:
                organization = await self.tenant.create_organization(
                    name=body.organization_name, owner_user_id=user_id, owner_email=body.email,
                    owner_name=body.name, request_id=info.request_id)
            async with self.pool.acquire() as conn, conn.transaction():
                user = await repo.insert_user(conn, user_id=user_id, email=body.email, name=body.name,
                                              password_hash=password_hash)
                await add_event(conn, source=self.settings.service_name, type="user.registered", subject_type="user",
                                subject_id=user.id, actor_user_id=user.id, actor_ip=info.ip,
                                request_id=info.request_id,
                                data={"user_id": str(user.id), "email": user.email, "name": user.name})
                if self.accounts is not None:
                    await self.accounts.send_verification(conn, user_id=user.id, email=user.email, name=user.name)
                session, refresh_token = await self.sessions.open_session(
                    conn, user_id=user.id, organization_id=organization.id if organization else None, info=info,
                    now=self.sessions.now())
        except BaseException:
            if organization is not None:
                await self._compensate(organization.id, user_id, info)
            raise
        tokens = self.sessions.issuer.tokens(
            user_id=user.id, session_id=session.id, organization_id=organization.id if organization else None,
            role="owner" if organization else None, refresh_token=refresh_token, as_of_ms=as_of_ms)
        return SignupResult(user=user, organization=organization, tokens=tokens)

    async def _compensate(self, organization_id: UUID, owner_user_id: UUID, info: RequestContext) -> None:
        try:
            await self.tenant.delete_organization(organization_id, owner_user_id=owner_user_id,
                                                  request_id=info.request_id)
        except Exception as exc:  # logged for an operator; the original failure is what the caller sees
            log.error("signup compensation failed: organization left without its owner account",
                      extra={"organization_id": str(organization_id), "owner_user_id": str(owner_user_id),
                             "error": type(exc).__name__})

    async def profile(self, user_id: UUID) -> User | None:
        async with self.pool.acquire() as conn:
            return await repo.get_by_id(conn, user_id=user_id)

    async def me(self, principal: Principal) -> MeOut:
        async with self.pool.acquire() as conn:
            user = await repo.get_by_id(conn, user_id=principal.user_id)
            verified = await account_repo.is_email_verified(conn, user_id=principal.user_id)
        if user is None:
            raise SessionEnded()
        return MeOut(id=user.id, email=user.email, name=user.name, email_verified=verified,
                     organization_id=principal.tenant_id,
                     role=principal.role if principal.tenant_id else None,
                     permissions=sorted(principal.permissions))

    async def change_password(self, principal: Principal, body: PasswordChangeRequest, info: RequestContext) -> None:
        async with self.pool.acquire() as conn:
            user = await repo.get_by_id(conn, user_id=principal.user_id)
        if user is None:
            raise SessionEnded()
        # Guessing the current password with a stolen access token is throttled like logins.
        await self.throttle.begin(user.email, info.ip)
        if not await self.hasher.verify(user.password_hash, body.current_password):
            raise CurrentPasswordIncorrect()
        await self.throttle.succeeded(user.email, info.ip)
        if body.new_password == body.current_password:
            raise PasswordUnchanged()
        new_hash = await self.hasher.hash(body.new_password)
        async with self.pool.acquire() as conn, conn.transaction():
            now = self.sessions.now()
            # Only over the hash the current password was just verified against: a change or
            # reset that committed meanwhile wins, and this one is refused like a wrong password.
            if not await self.sessions.replace_credentials(conn, info, user_id=user.id, new_password_hash=new_hash,
                                                           expected=user,
                                                           reason="password_changed", now=now,
                                                           keep_session_id=principal.session_id):
                raise CurrentPasswordIncorrect()
            event = await add_event(conn, source=self.settings.service_name, type="auth.password_changed",
                                    subject_type="user", subject_id=user.id, actor_user_id=user.id, actor_ip=info.ip,
                                    request_id=info.request_id, data={})
            await record_event(conn, event, info.user_agent)


USERS = web.AppKey("users", UserService)
