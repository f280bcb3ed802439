"""API keys of an organization: created (the key shown once, stored as a hash), listed,
revoked (dead at the gateway at once: the ``rv:ak`` flag), and resolved by the gateway into a
short-lived access token carrying ``akid``, ``tid`` and ``perms``."""
from __future__ import annotations

import builtins
import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
from aiohttp import web

from shared import permissions as perms
from shared import redis_keys
from shared.auth import Principal
from shared.context import RequestContext
from shared.errors import ApiKeyNotFound, FieldError, PermissionNotHeld, ValidationFailed
from shared.messaging import add_event
from shared.pagination import KeysetCursors, PageQuery

from ..config import Settings
from ..revocation import Mark, Revocations
from ..tokens.service import AccessTokenIssuer
from . import repository as repo
from .repository import ApiKey
from .schemas import API_KEY_PREFIX, PREFIX_LENGTH, ApiKeyCreate, ApiKeyCreated, ApiKeyOut, UsageReport

# 256 bits of randomness (token_urlsafe(32): 43 characters).
KEY_RANDOM_BYTES = 32


def new_key() -> tuple[str, bytes]:
    key = API_KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)
    return key, hash_key(key)


def hash_key(key: str) -> bytes:
    # A plain SHA-256 is enough: the key has 256 random bits, nothing to brute-force.
    return hashlib.sha256(key.encode()).digest()


def key_out(k: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(id=k.id, name=k.name, prefix=k.prefix, permissions=sorted(k.permissions),
                     created_at=k.created_at, expires_at=k.expires_at, last_used_at=k.last_used_at)


class ApiKeyService:
    def __init__(self, *, pool: asyncpg.Pool, revocations: Revocations, settings: Settings,
                 issuer: AccessTokenIssuer):
        self.pool, self.revocations, self.settings, self.issuer = pool, revocations, settings, issuer
        # (created_at, id)
        self.cursors = KeysetCursors(settings.cursor_secret.get_secret_value(), "auth.api_keys", datetime, UUID)
        # The flag must outlive every token minted for the key before it was revoked (a
        # resolution racing the revocation may mint one just after the flag is written).
        self.revoked_ttl_s = settings.api_key_token_ttl_s + settings.jwt_leeway_s + 60

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def create(self, principal: Principal, org_id: UUID, body: ApiKeyCreate,
                     info: RequestContext) -> ApiKeyCreated:
        unknown = perms.unknown(body.permissions)
        if unknown:
            raise ValidationFailed("The request has invalid fields.", errors=[
                FieldError("permissions", f"unknown permission(s): {', '.join(unknown)}")])
        wanted = sorted(set(body.permissions))
        beyond = sorted(set(wanted) - principal.permissions)
        if beyond:
            raise PermissionNotHeld(f"A key cannot hold permissions you do not hold: {', '.join(beyond)}.")
        key, key_hash = new_key()
        now = self.now()
        expires_at = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
        async with self.pool.acquire() as conn, conn.transaction():
            row = await repo.insert(conn, id=uuid4(), organization_id=org_id, name=body.name,
                                    prefix=key[:PREFIX_LENGTH], key_hash=key_hash, permissions=wanted,
                                    created_by=principal.user_id, created_at=now, expires_at=expires_at)
            await add_event(conn, source=self.settings.service_name, type="api_key.created", subject_type="api_key",
                            subject_id=row.id, tenant_id=org_id, actor=info.actor(principal),
                            request_id=info.request_id,
                            data={"api_key_id": str(row.id), "name": row.name, "prefix": row.prefix,
                                  "permissions": wanted,
                                  "expires_at": expires_at.isoformat() if expires_at else None})
        return ApiKeyCreated(**key_out(row).model_dump(), key=key)

    async def list(self, org_id: UUID, query: PageQuery) -> tuple[list[ApiKeyOut], str | None]:
        cursors = self.cursors.bind(org=org_id)
        after = cursors.after(query.cursor)
        async with self.pool.acquire() as conn:
            rows = await repo.list_live(conn, organization_id=org_id, limit=query.limit + 1, after=after)
        rows, cursor = cursors.page(rows, query.limit, lambda r: (r.created_at, r.id))
        return [key_out(r) for r in rows], cursor

    async def revoke(self, principal: Principal, org_id: UUID, key_id: UUID, info: RequestContext) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await repo.revoke(conn, key_id=key_id, organization_id=org_id, now=self.now())
            if row is None:
                raise ApiKeyNotFound()
            await add_event(conn, source=self.settings.service_name, type="api_key.revoked", subject_type="api_key",
                            subject_id=row.id, tenant_id=org_id, actor=info.actor(principal),
                            request_id=info.request_id,
                            data={"api_key_id": str(row.id), "name": row.name, "prefix": row.prefix})
            # Written before the commit: if Redis does not answer, the key stays live (503)
            # rather than revoked in the database while the gateway still lets it through.
            await self.mark_revoked(conn, [row.id])

    # builtins.list below: inside this class, ``list`` names the method above.
    async def revoke_organization(self, conn: asyncpg.Connection, organization_id: UUID) -> builtins.list[UUID]:
        """Every key of a deleted organization (in the caller's transaction)."""
        ids = await repo.revoke_organization(conn, organization_id=organization_id, now=self.now())
        await self.mark_revoked(conn, ids)
        return ids

    async def mark_revoked(self, conn: asyncpg.Connection, ids: builtins.list[UUID]) -> None:
        """Recorded in PostgreSQL with the revocation (rebuilt into a Redis that lost it) and
        written to Redis before the commit: if Redis does not answer, the whole revocation rolls
        back (503) rather than leaving the key revoked in the database but live at the gateway."""
        expires_ms = int(time.time() * 1000) + self.revoked_ttl_s * 1000
        await self.revocations.put(conn, [Mark(redis_keys.api_key_revoked(key_id), "1", expires_ms)
                                          for key_id in ids])

    # ---------------------------------------------------------------- the gateway's side

    async def resolve(self, key: str) -> tuple[str, int]:
        """(access token, lifetime) for a live key; NotFound for anything else."""
        if not key.startswith(API_KEY_PREFIX):
            raise ApiKeyNotFound()
        now = self.now()
        async with self.pool.acquire() as conn:
            row = await repo.get_live_by_hash(conn, key_hash=hash_key(key), now=now)
        if row is None:
            raise ApiKeyNotFound()
        ttl = self.settings.api_key_token_ttl_s
        if row.expires_at is not None:
            ttl = min(ttl, int((row.expires_at - now).total_seconds()))
        if ttl <= 0:
            raise ApiKeyNotFound()
        # The key acts as itself: subject and session are the key's id, so no user's session,
        # role change or logout touches it; its organization's deletion does (rv:t).
        token = self.issuer.mint_scoped(subject=row.id, session_id=row.id, organization_id=row.organization_id,
                                        role=None, permissions=row.permissions, ttl_s=ttl,
                                        extra={"akid": str(row.id)})
        return token, ttl

    async def record_usage(self, report: UsageReport) -> int:
        if not report.items:
            return 0
        ids = [i.id for i in report.items]
        at = [datetime.fromtimestamp(i.used_at / 1000, UTC) for i in report.items]
        async with self.pool.acquire() as conn:
            return await repo.record_usage(conn, ids=ids, used_at=at,
                                           min_interval_s=self.settings.api_key_usage_interval_s)


API_KEYS = web.AppKey("api_keys", ApiKeyService)
