"""Sessions: login, refresh-token rotation with reuse detection, logout, listing, revocation."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from aiohttp import web

from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import InvalidCredentials, NotAMember, RefreshTokenInvalid, SessionNotFound, TokenRevoked
from shared.messaging import Event, add_event
from shared.messaging.outbox import new_event
from shared.pagination import KeysetCursors, PageQuery
from shared.web import canonical_email

from ..config import Settings
from ..revocation import DB_CLOCK_MS_SQL, Revocations, db_clock_ms
from ..security_log import record_event
from ..security_log.repository import add_event_and_record
from ..tenants.cache import KeptMemberships, ToKeep
from ..tenants.client import Membership, TenantClient
from ..tokens.schemas import TokensOut
from ..tokens.service import AccessTokenIssuer, hash_refresh_token, new_refresh_token, open_successor, seal_successor
from ..users import repository as users_repo
from ..users.passwords import PasswordHasher
from ..users.repository import User
from . import repository as repo
from .devices import device_label
from .repository import Session
from .schemas import LoginRequest, RefreshRequest, SessionOut
from .throttle import LoginThrottle

LOGIN_FAILED_DETAIL = "The email or password is incorrect."


def _discard(task: asyncio.Future[Any] | None) -> None:
    """Drop a side call whose answer is no longer needed, without an unretrieved error."""
    if task is None:
        return
    if task.done():
        if not task.cancelled():
            task.exception()
    else:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Done callback of a side call left to finish on its own: its error is retrieved (and dropped)."""
    if not task.cancelled():
        task.exception()


InvalidRefreshToken = RefreshTokenInvalid


class SessionEnded(TokenRevoked):
    default_detail = "The session of this access token has ended."


class CredentialsChanged(InvalidCredentials):
    """The password changed while this sign-in verified the previous one: answered exactly like a
    wrong password (the same type and detail)."""
    default_detail = LOGIN_FAILED_DETAIL


@dataclass(frozen=True)
class LoginResult:
    user: User
    tokens: TokensOut


def choose_scope(memberships: list[Membership], requested: UUID | None,
                 current: UUID | None = None) -> tuple[UUID | None, str | None]:
    """The organization (and role) a token is for: the one asked for (403 unless a member), else
    the session's current one while still a member, else the oldest membership, else none."""
    by_org = {m.organization_id: m for m in memberships}
    if requested is not None:
        if requested not in by_org:
            raise NotAMember()
        return requested, by_org[requested].role
    if current is not None and current in by_org:
        return current, by_org[current].role
    if memberships:
        return memberships[0].organization_id, memberships[0].role
    return None, None


def scope_permissions(memberships: list[Membership], organization_id: UUID | None) -> tuple[str, ...] | None:
    """The permissions tenant-service says the chosen membership's role grants (the token's
    ``perms``); None without an organization or when tenant-service did not say."""
    for m in memberships:
        if m.organization_id == organization_id:
            return m.permissions
    return None


class SessionService:
    def __init__(self, *, pool: asyncpg.Pool, settings: Settings, hasher: PasswordHasher, throttle: LoginThrottle,
                 tenant: TenantClient, issuer: AccessTokenIssuer, revocations: Revocations):
        self.pool, self.settings, self.hasher, self.throttle = pool, settings, hasher, throttle
        self.tenant, self.issuer, self.revocations = tenant, issuer, revocations
        self.grace = timedelta(seconds=settings.refresh_grace_s)
        self.idle = timedelta(seconds=settings.session_idle_ttl_s)
        self.absolute = timedelta(seconds=settings.session_absolute_ttl_s)
        # (created_at, id)
        self.cursors = KeysetCursors(settings.cursor_secret.get_secret_value(), "auth.sessions", datetime, UUID)

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def _event(self, conn: asyncpg.Connection, info: RequestContext, *, type: str, subject_type: str,
                     subject_id: UUID | str,
                     actor_user_id: UUID | None = None, tenant_id: UUID | None = None,
                     data: dict[str, object] | None = None) -> None:
        event = await add_event(conn, source=self.settings.service_name, type=type, subject_type=subject_type,
                                subject_id=subject_id, tenant_id=tenant_id, actor_user_id=actor_user_id,
                                actor_ip=info.ip, request_id=info.request_id, data=data or {})
        await record_event(conn, event, info.user_agent)  # the account's security log

    def _new_event(self, info: RequestContext, *, type: str, subject_type: str, subject_id: UUID | str,
                   actor_user_id: UUID | None = None, tenant_id: UUID | None = None,
                   data: dict[str, object] | None = None) -> Event:
        """An event for a statement that writes it with its change (see ``_event``)."""
        return new_event(source=self.settings.service_name, type=type, subject_type=subject_type,
                         subject_id=subject_id, tenant_id=tenant_id, actor_user_id=actor_user_id, actor_ip=info.ip,
                         request_id=info.request_id, data=data or {})

    # ------------------------------------------------------------------ opening

    async def open_session(self, conn: asyncpg.Connection, *, user_id: UUID, organization_id: UUID | None,
                           info: RequestContext, now: datetime) -> tuple[Session, str]:
        """A new session and its first refresh token (inside the caller's transaction)."""
        token, token_hash = new_refresh_token()
        session = await repo.insert_session(conn, session_id=uuid4(), user_id=user_id,
                                            organization_id=organization_id, now=now,
                                            expires_at=now + self.absolute, user_agent=info.user_agent, ip=info.ip,
                                            first_token_hash=token_hash)
        return session, token

    async def login(self, body: LoginRequest, info: RequestContext) -> LoginResult:
        email = canonical_email(body.email)
        # The account is looked up while the attempt is counted (both come before the hash);
        # a refused attempt lets the lookup finish on its own rather than cancel a query.
        lookup = asyncio.ensure_future(self._account(email))
        try:
            await self.throttle.begin(email, info.ip)
        except BaseException:
            lookup.add_done_callback(_retrieved)
            raise
        user, as_of_ms, kept = await lookup
        # The memberships come from an earlier sign-in's answer while it is still good
        # (tenants/cache.py), else from tenant-service: that question runs while the password is
        # hashed (it needs only the user id), so its latency hides behind the hash; its answer is
        # dropped unless the password is right.
        memberships_call = None
        if user is not None and (kept is None or not kept.serves(body.organization_id)):
            kept = None
            memberships_call = asyncio.ensure_future(self.tenant.memberships(user.id, request_id=info.request_id))
        source = kept if kept is not None else memberships_call
        try:
            # An unknown email is verified against a dummy hash: the same work, the same answer.
            ok = await self.hasher.verify(user.password_hash if user else None, body.password)
        except BaseException:
            _discard(memberships_call)
            raise
        # An unknown email never verifies (and then no membership call was made); the two
        # None checks state it for the reader and the type checker.
        if not ok or user is None or source is None:
            _discard(memberships_call)
            failed = self._new_event(info, type="auth.login_failed", subject_type="user",
                                     subject_id=user.id if user else "unknown",
                                     actor_user_id=user.id if user else None, data={"reason": "invalid_credentials"})
            async with self.pool.acquire() as conn:
                await add_event_and_record(conn, failed, info.user_agent)  # one statement
            raise InvalidCredentials(LOGIN_FAILED_DETAIL)
        # The password was right: the attempt is refunded while the session is written.
        refund = asyncio.ensure_future(self.throttle.succeeded(email, info.ip))
        try:
            tokens = await self._open(user, body, info, source, as_of_ms=as_of_ms)
        except BaseException:
            refund.add_done_callback(_retrieved)
            raise
        await refund  # before the answer: the client's next attempt sees the refund
        return LoginResult(user=user, tokens=tokens)

    async def _open(self, user: User, body: LoginRequest, info: RequestContext,
                    source: KeptMemberships | asyncio.Future[list[Membership]], *, as_of_ms: int) -> TokensOut:
        """After the password verified: the session (scoped to the organization asked for, or
        the oldest membership) and its tokens. Kept memberships make a token as old as they are;
        memberships just asked for are kept for the next sign-ins (tenants/cache.py)."""
        if isinstance(source, KeptMemberships):
            memberships, as_of_ms, keep = source.memberships, source.as_of_ms, ToKeep.nothing()
        else:
            memberships = await source
            keep = ToKeep.of(user.id, memberships, as_of_ms)
        organization_id, role = choose_scope(memberships, body.organization_id)
        new_hash = await self.hasher.hash(body.password) if self.hasher.needs_rehash(user.password_hash) else None
        now = self.now()
        session_id = uuid4()
        refresh_token, token_hash = new_refresh_token()
        event = self._new_event(info, type="auth.login_succeeded", subject_type="user", subject_id=user.id,
                                actor_user_id=user.id, tenant_id=organization_id,
                                data={"session_id": str(session_id)})
        async with self.pool.acquire() as conn, contextlib.AsyncExitStack() as tx:
            if new_hash is not None:
                await tx.enter_async_context(conn.transaction())
                # The hashing parameters changed since this hash was made: upgrade it now that
                # the password is at hand, but only if it is still the hash just verified
                # (compare-and-set: a password changed meanwhile is never overwritten).
                await users_repo.rehash_password(conn, user_id=user.id, verified_hash=user.password_hash,
                                                 new_hash=new_hash)
            # One statement: the session, its first refresh token, the event and the security log
            # entry, only while the password is still the one verified. A change committed since
            # then ended every session and this sign-in must not open a new one; the row's share
            # lock holds a concurrent change back until this session has committed, so the
            # change ends it.
            session = await repo.open_login_session(
                conn, session_id=session_id, user_id=user.id, password_changed_at=user.password_changed_at,
                organization_id=organization_id, now=now, expires_at=now + self.absolute,
                user_agent=info.user_agent, ip=info.ip, first_token_hash=token_hash, event=event, keep=keep)
        if session is None:
            raise CredentialsChanged()
        return self.issuer.tokens(user_id=user.id, session_id=session.id, organization_id=organization_id,
                                  role=role, refresh_token=refresh_token,
                                  permissions=scope_permissions(memberships, organization_id), as_of_ms=as_of_ms)

    async def _account(self, email: str) -> tuple[User | None, int, KeptMemberships | None]:
        """The account of ``email`` and, read right after it, the token's comparison time
        (iat_ms): taken BEFORE the membership is read, on the clock revocation marks use
        (auth_service.revocation); and the memberships kept for it, if still good."""
        async with self.pool.acquire() as conn:
            return await users_repo.get_by_email_at(conn, email=email, clock_sql=DB_CLOCK_MS_SQL,
                                                    cache_ttl_ms=self.settings.membership_cache_ttl_ms)

    # ------------------------------------------------------------------ rotation

    async def refresh(self, body: RefreshRequest, info: RequestContext) -> TokensOut:
        token_hash = hash_refresh_token(body.refresh_token)
        async with self.pool.acquire() as conn:
            found = await repo.get_refresh_token(conn, token_hash=token_hash)
            as_of_ms = await db_clock_ms(conn)  # before the membership is read (see login)
        if found is None:
            raise InvalidRefreshToken()
        # Asked before any lock is taken: no row stays locked across a network call.
        memberships = await self.tenant.memberships(found.user_id, request_id=info.request_id)

        reused = False
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                # Every refresh of a session queues on this row lock, so concurrent refreshes
                # of one token see each other: the first rotates, the others find it spent
                # within the grace window and answer with the same successor.
                session = await repo.lock_session(conn, session_id=found.session_id)
                token = await repo.get_refresh_token(conn, token_hash=token_hash)
                now = self.now()
                if (session is None or token is None or session.revoked_at is not None
                        or session.expires_at <= now or session.last_used_at + self.idle <= now):
                    raise InvalidRefreshToken()
                if token.spent_at is None:
                    successor = None
                else:
                    successor = await self._grace_successor(conn, body.refresh_token, token, now)
                    if successor is None:
                        # A spent token presented again outside the grace: someone else holds
                        # a copy of the chain. End the session, every token of it (checked
                        # before anything else the request asks, so nothing can skip it).
                        await self._end_sessions(conn, info, [(session.id, session.user_id)],
                                                 reason="refresh_token_reused", now=now)
                        await self._event(conn, info, type="auth.refresh_token_reused", subject_type="session",
                                          subject_id=session.id, actor_user_id=session.user_id,
                                          tenant_id=session.organization_id,
                                          data={"user_id": str(session.user_id), "session_id": str(session.id)})
                        reused = True
                if not reused:
                    # A refused organization switch (403) rolls back: nothing is spent.
                    organization_id, role = choose_scope(memberships, body.organization_id, session.organization_id)
                    if successor is None:
                        successor, successor_hash = new_refresh_token()
                        await repo.insert_refresh_token(conn, token_hash=successor_hash, session_id=session.id,
                                                        now=now)
                        await repo.spend(conn, token_hash=token_hash, now=now, successor_hash=successor_hash,
                                         successor_sealed=seal_successor(body.refresh_token, successor,
                                                                         successor_hash))
                    await repo.touch_session(conn, session_id=session.id, now=now, organization_id=organization_id)
        if reused or successor is None:  # a reused chain: the session is over (committed above)
            raise InvalidRefreshToken()
        return self.issuer.tokens(user_id=session.user_id, session_id=session.id, organization_id=organization_id,
                                  role=role, refresh_token=successor,
                                  permissions=scope_permissions(memberships, organization_id), as_of_ms=as_of_ms)

    async def _grace_successor(self, conn: asyncpg.Connection, presented: str, token: repo.RefreshToken,
                               now: datetime) -> str | None:
        """The successor of a token spent moments ago, while that successor is still the
        session's live token; None otherwise."""
        if (token.spent_at is None or token.successor_sealed is None or token.successor_hash is None
                or now - token.spent_at > self.grace):
            return None
        if not await repo.is_unspent(conn, token_hash=token.successor_hash):
            return None
        return open_successor(presented, token.successor_sealed, token.successor_hash)

    # ------------------------------------------------------------------ ending

    async def _end_sessions(self, conn: asyncpg.Connection, info: RequestContext, sessions: list[tuple[UUID, UUID]],
                            *, reason: str, now: datetime, actor_user_id: UUID | None = None,
                            tenant_id: UUID | None = None, already_ended: bool = False) -> None:
        """Events and revocation keys for sessions ended in this transaction (Redis is written
        before the commit: if it does not answer, nothing is ended and the caller gets 503)."""
        for session_id, user_id in sessions:
            if not already_ended:
                await repo.revoke_session(conn, session_id=session_id, now=now, reason=reason)
            await self._event(conn, info, type="auth.session_revoked", subject_type="session", subject_id=session_id,
                              actor_user_id=actor_user_id or user_id, tenant_id=tenant_id,
                              data={"user_id": str(user_id), "session_id": str(session_id), "reason": reason})
        await self.revocations.end_sessions(conn, [sid for sid, _ in sessions])

    async def end_user_sessions(self, conn: asyncpg.Connection, info: RequestContext, *, user_id: UUID, reason: str,
                                now: datetime, keep_session_id: UUID | None = None) -> list[UUID]:
        ids = await repo.revoke_user_sessions(conn, user_id=user_id, now=now, reason=reason,
                                              keep_session_id=keep_session_id)
        await self._end_sessions(conn, info, [(sid, user_id) for sid in ids], reason=reason, now=now,
                                 actor_user_id=user_id, already_ended=True)
        return ids

    async def replace_credentials(self, conn: asyncpg.Connection, info: RequestContext, *, user_id: UUID,
                                  new_password_hash: str, reason: str, now: datetime, expected: User | None = None,
                                  keep_session_id: UUID | None = None) -> bool:
        """THE "credentials changed, end every session" step (password change, password reset):
        inside the caller's transaction, replace the user's password hash and end every session
        of the user (but ``keep_session_id``), with their revocation marks.

        ``expected``: the account as read when the caller verified its current password; the
        hash is replaced only if the password was not changed since (False, nothing changed,
        when it was). None replaces unconditionally (a reset proves the mailbox, not the old
        password).

        Sign-ins serialize against this on the user row (``repo.open_login_session``):
        a sign-in that verified the old password either committed its session before the
        change (and the change ends it here) or finds the password changed and opens nothing.
        """
        if not await users_repo.replace_password_hash(conn, user_id=user_id, password_hash=new_password_hash,
                                                      expected=expected):
            return False
        await self.end_user_sessions(conn, info, user_id=user_id, reason=reason, now=now,
                                     keep_session_id=keep_session_id)
        return True

    async def end_organization_sessions(self, conn: asyncpg.Connection, info: RequestContext, *, organization_id: UUID,
                                        now: datetime) -> list[UUID]:
        ended = await repo.revoke_organization_sessions(conn, organization_id=organization_id, now=now,
                                                        reason="organization_deleted")
        await self._end_sessions(conn, info, ended, reason="organization_deleted", now=now,
                                 tenant_id=organization_id, already_ended=True)
        return [sid for sid, _ in ended]

    async def logout(self, principal: Principal, info: RequestContext) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            now = self.now()
            if await repo.revoke_session(conn, session_id=principal.session_id, now=now, reason="logout"):
                await self._end_sessions(conn, info, [(principal.session_id, principal.user_id)], reason="logout",
                                         now=now, tenant_id=principal.tenant_id, already_ended=True)
            else:
                # Already ended (a retried logout): make sure the revocation key is there.
                await self.revocations.end_sessions(conn, [principal.session_id])

    async def logout_all(self, principal: Principal, info: RequestContext) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            ids = await self.end_user_sessions(conn, info, user_id=principal.user_id, reason="logout_all",
                                               now=self.now())
            if principal.session_id not in ids:
                await self.revocations.end_sessions(conn, [principal.session_id])

    async def revoke(self, principal: Principal, session_id: UUID, info: RequestContext) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            session = await repo.lock_session(conn, session_id=session_id)
            # Another user's session is answered exactly like one that does not exist.
            if session is None or session.user_id != principal.user_id or session.revoked_at is not None:
                raise SessionNotFound()
            await self._end_sessions(conn, info, [(session.id, session.user_id)], reason="revoked", now=self.now(),
                                     tenant_id=session.organization_id)

    # ------------------------------------------------------------------ reading

    async def ensure_active(self, principal: Principal) -> Session:
        """The access token verified; its session must still be live too (this service reads
        the database directly rather than the gateway's revocation keys)."""
        async with self.pool.acquire() as conn:
            session = await repo.get_session(conn, session_id=principal.session_id)
        now = self.now()
        if (session is None or session.user_id != principal.user_id or session.revoked_at is not None
                or session.expires_at <= now):
            raise SessionEnded()
        return session

    async def list_sessions(self, principal: Principal, query: PageQuery) -> tuple[list[SessionOut], str | None]:
        cursors = self.cursors.bind(user=principal.user_id)
        after = cursors.after(query.cursor)
        now = self.now()
        async with self.pool.acquire() as conn:
            rows = await repo.list_active(conn, user_id=principal.user_id, now=now, idle_since=now - self.idle,
                                          limit=query.limit + 1, after=after)
        rows, next_cursor = cursors.page(rows, query.limit, lambda s: (s.created_at, s.id))
        items = [SessionOut(id=s.id, created_at=s.created_at, last_used_at=s.last_used_at, user_agent=s.user_agent,
                            device=device_label(s.user_agent), ip=s.ip, current=s.id == principal.session_id)
                 for s in rows]
        return items, next_cursor


SESSIONS = web.AppKey("sessions", SessionService)
