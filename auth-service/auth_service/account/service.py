"""Email verification and password reset.

Tokens are 256 random bits; only their sha256 is stored, and the plaintext leaves this
process only inside the email (rendered into ``mail_outbox`` in the same transaction, erased
from there once sent). Neither an event, a log line nor a response carries one.
"""
from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from aiohttp import web

from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import EmailTokenInvalid, FieldError
from shared.mail import Mailer
from shared.messaging import Event, add_event

from ..config import Settings
from ..security_log import record_event
from ..sessions.service import SessionEnded, SessionService
from ..users import repository as users_repo
from ..users.passwords import PasswordHasher
from . import repository as repo
from .limits import EmailRequestLimits, reset_email_key, reset_ip_key, verification_user_key
from .schemas import PasswordResetBody

INVALID_TOKEN = "The link is invalid, has expired or was already used."


def new_token() -> tuple[str, bytes]:
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _invalid() -> EmailTokenInvalid:
    return EmailTokenInvalid(INVALID_TOKEN, errors=[FieldError("token", "is invalid, expired or already used")])


class AccountService:
    def __init__(self, *, pool: asyncpg.Pool, settings: Settings, hasher: PasswordHasher, sessions: SessionService,
                 mailer: Mailer, limits: EmailRequestLimits):
        self.pool, self.settings, self.hasher, self.sessions = pool, settings, hasher, sessions
        self.mailer, self.limits = mailer, limits

    async def _event(self, conn: asyncpg.Connection, info: RequestContext, *, type: str, user_id: UUID,
                     data: dict[str, object] | None = None) -> Event:
        event = await add_event(conn, source=self.settings.service_name, type=type, subject_type="user",
                                subject_id=user_id, actor_user_id=user_id, actor_ip=info.ip,
                                request_id=info.request_id, data={"user_id": str(user_id), **(data or {})})
        await record_event(conn, event, info.user_agent)
        return event

    # ------------------------------------------------------------------ verification

    async def send_verification(self, conn: asyncpg.Connection, *, user_id: UUID, email: str, name: str) -> None:
        """A verification token and its email, inside the caller's transaction (signup, request)."""
        token, token_hash = new_token()
        await repo.insert_verification(conn, token_hash=token_hash, user_id=user_id, email=email,
                                       ttl_s=self.settings.email_verification_ttl_s)
        await self.mailer.enqueue(conn, template="verify_email", to=email,
                                  context={"name": name, "email": email,
                                           "link": self.mailer.link("verify-email", token)})

    async def request_verification(self, principal: Principal) -> None:
        async with self.pool.acquire() as conn:
            user = await users_repo.get_by_id(conn, user_id=principal.user_id)
            if user is None:
                raise SessionEnded()
            if await repo.is_email_verified(conn, user_id=user.id):
                return  # nothing to prove: no email, same answer
        await self.limits.hit([(verification_user_key(user.id), self.settings.verification_requests_per_window)])
        async with self.pool.acquire() as conn, conn.transaction():
            await self.send_verification(conn, user_id=user.id, email=user.email, name=user.name)

    async def verify_email(self, token: str, info: RequestContext) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            found = await repo.lock_verification(conn, token_hash=hash_token(token))
            # A verification token always names its address (NOT NULL); only reset tokens have none.
            if (found is None or found.email is None or found.used_at is not None
                    or found.expires_at <= datetime.now(UTC)):
                raise _invalid()
            outcome = await repo.mark_email_verified(conn, user_id=found.user_id, email=found.email)
            if outcome == "mismatch":
                raise _invalid()  # the account's email changed since the link was sent
            await repo.use_verification(conn, token_hash=found.token_hash)
            if outcome == "verified":
                await self._event(conn, info, type="auth.email_verified", user_id=found.user_id,
                                  data={"email": found.email, "method": "link"})

    async def verify_from_invitation(self, conn: asyncpg.Connection, *, user_id: UUID, email: str,
                                     info: RequestContext) -> bool:
        """An accepted invitation proves the address it was sent to (inside the consumer's transaction)."""
        if await repo.mark_email_verified(conn, user_id=user_id, email=email) != "verified":
            return False
        await self._event(conn, info, type="auth.email_verified", user_id=user_id,
                          data={"email": email, "method": "invitation"})
        return True

    # ------------------------------------------------------------------ password reset

    async def request_password_reset(self, email: str, info: RequestContext) -> None:
        """The same answer, after the same time, whether or not the account exists: the work for
        a known email is short and the answer waits out a fixed floor in both cases."""
        started = time.monotonic()
        limits = [(reset_email_key(email), self.settings.password_reset_requests_per_email)]
        if info.ip:
            limits.append((reset_ip_key(info.ip), self.settings.password_reset_requests_per_ip))
        await self.limits.hit(limits)
        async with self.pool.acquire() as conn, conn.transaction():
            # The row lock orders concurrent requests of one user: exactly one token survives.
            user = await repo.lock_user(conn, email=email)
            if user is not None:
                token, token_hash = new_token()
                await repo.replace_reset_token(conn, token_hash=token_hash, user_id=user["id"],
                                               ttl_s=self.settings.password_reset_ttl_s)
                await self.mailer.enqueue(conn, template="password_reset", to=user["email"],
                                          context={"name": user["name"],
                                                   "link": self.mailer.link("reset-password", token)})
                await self._event(conn, info, type="auth.password_reset_requested", user_id=user["id"])
        remaining = self.settings.password_reset_request_floor_s - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _valid_reset(self, conn: asyncpg.Connection, token_hash: bytes, *,
                           for_update: bool = False) -> repo.EmailToken:
        found = await repo.get_reset(conn, token_hash=token_hash, for_update=for_update)
        if found is None or found.used_at is not None or found.expires_at <= datetime.now(UTC):
            raise _invalid()
        return found

    async def reset_password(self, body: PasswordResetBody, info: RequestContext) -> None:
        token_hash = hash_token(body.token)
        async with self.pool.acquire() as conn:
            await self._valid_reset(conn, token_hash)  # before the costly hash
        new_hash = await self.hasher.hash(body.new_password)
        async with self.pool.acquire() as conn, conn.transaction():
            # Checked again under the row lock: of two concurrent uses, one wins.
            found = await self._valid_reset(conn, token_hash, for_update=True)
            await repo.use_reset(conn, token_hash=token_hash, user_id=found.user_id)
            # The one "credentials changed, end every session" step of a password change, with no
            # expected old hash (the link proves the mailbox, not the old password): the hash is
            # replaced and every session ends with its revocation marks, serialized against
            # sign-ins on the user row.
            await self.sessions.replace_credentials(conn, info, user_id=found.user_id, new_password_hash=new_hash,
                                                    reason="password_reset", now=self.sessions.now())
            await self._event(conn, info, type="auth.password_reset", user_id=found.user_id)


ACCOUNTS = web.AppKey("accounts", AccountService)
