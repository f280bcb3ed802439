"""Access-token verification (the gateway and every service use it) and the trust rules for
headers set by the gateway."""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import aiohttp
import jwt
from aiohttp import web

from .config import BaseServiceSettings
from .errors import (
    OrganizationScopeRequired,
    PermissionMissing,
    ServiceUnavailable,
    StaffReadOnly,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
)
from .permissions import builtin_permissions

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("EdDSA", "ES256")
ACCESS_TOKEN_TYP = "at+jwt"
# Staff access is read-only: any other method answers 403 in every service (``authenticate``).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
INTERNAL_TOKEN_HEADER = "X-Internal-Token"
CLIENT_IP_HEADER = "X-Client-IP"


@dataclass(frozen=True)
class Principal:
    """The verified caller, the same in every process: a user (with a session), an API key
    acting for its organization (``api_key_id``), or platform staff with read-only access to
    one organization (``staff``). Authorization asks ``has_permission``, never the role name."""
    user_id: UUID
    session_id: UUID
    tenant_id: UUID | None
    role: str | None
    jti: str
    iat: int
    exp: int
    claims: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    permissions: frozenset[str] = frozenset()
    api_key_id: UUID | None = None
    staff: bool = False

    def has_permission(self, name: str) -> bool:
        return name in self.permissions


class KeySource(Protocol):
    async def get(self, kid: str) -> jwt.PyJWK | None: ...


class StaticKeys:
    """Keys known in-process (the auth service verifies with its own public keys)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.keys = {k["kid"]: jwt.PyJWK(k) for k in jwks.get("keys", [])}

    async def get(self, kid: str) -> jwt.PyJWK | None:
        return self.keys.get(kid)


class JWKSCache:
    """Public keys fetched from the auth service's JWKS. An unknown ``kid`` triggers a refetch,
    at most once per ``min_refetch_s`` so forged kids cannot turn the gateway into a flood."""

    def __init__(self, url: str, session: aiohttp.ClientSession, *, min_refetch_s: float = 5.0,
                 timeout_s: float = 2.0):
        self.url, self.session = url, session
        self.min_refetch_s, self.timeout_s = min_refetch_s, timeout_s
        self.keys: dict[str, jwt.PyJWK] = {}
        self._last_fetch = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        self._last_fetch = time.monotonic()
        async with self.session.get(self.url, timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
            resp.raise_for_status()
            data = json.loads(await resp.read())
        keys = {}
        for k in data.get("keys", []):
            try:
                if k.get("kid"):
                    keys[k["kid"]] = jwt.PyJWK(k)
            except jwt.PyJWTError:
                log.warning("skipping unusable JWKS key", extra={"kid": k.get("kid")})
        self.keys = keys

    async def get(self, kid: str) -> jwt.PyJWK | None:
        key = self.keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if kid in self.keys:
                return self.keys[kid]
            if time.monotonic() - self._last_fetch < self.min_refetch_s and self._last_fetch:
                return None
            try:
                await self.refresh()
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                log.warning("JWKS fetch failed", extra={"error": type(exc).__name__})
                if not self.keys:
                    raise ServiceUnavailable("Token keys are not available yet.") from None
            return self.keys.get(kid)


class TokenVerifier:
    def __init__(self, keys: KeySource, *, issuer: str, audience: str, leeway_s: int = 10):
        self.keys, self.issuer, self.audience, self.leeway = keys, issuer, audience, leeway_s

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("The access token is malformed.") from None
        alg, kid = header.get("alg"), header.get("kid")
        # The algorithm comes from our allowlist, never from the token: this refuses "none",
        # HS256 signed with a public key, and any other algorithm confusion.
        if alg not in ALLOWED_ALGORITHMS or not isinstance(kid, str) or header.get("typ") != ACCESS_TOKEN_TYP:
            raise TokenInvalid("The access token is not acceptable.")
        key = await self.keys.get(kid)
        if key is None:
            raise TokenInvalid("The access token is signed by an unknown key.")
        if key.algorithm_name != alg:
            raise TokenInvalid("The access token is not acceptable.")
        try:
            claims = jwt.decode(token, key=key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway,
                                options={"require": ["exp", "iat", "sub", "sid", "jti", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.PyJWTError:
            raise TokenInvalid() from None
        try:
            return principal_from_claims(claims)
        except (ValueError, TypeError, KeyError):
            raise TokenInvalid() from None


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The caller a verified token describes. ``perms`` lists the token's permissions (only
    meaningful with a ``tid``); a token without it has its built-in role's set."""
    tenant_id = UUID(claims["tid"]) if claims.get("tid") else None
    role = claims.get("role") if isinstance(claims.get("role"), str) and tenant_id else None
    perms = claims.get("perms")
    if tenant_id is None:
        permissions: frozenset[str] = frozenset()
    elif isinstance(perms, list):
        permissions = frozenset(p for p in perms if isinstance(p, str))
    else:
        permissions = builtin_permissions(role or "") or frozenset()
    api_key_id = claims.get("akid")
    return Principal(
        user_id=UUID(claims["sub"]), session_id=UUID(claims["sid"]), tenant_id=tenant_id, role=role,
        jti=str(claims["jti"]), iat=int(claims["iat"]), exp=int(claims["exp"]), claims=claims,
        permissions=permissions, api_key_id=UUID(api_key_id) if api_key_id else None,
        staff=claims.get("staff") is True)


T = TypeVar("T")
# Verified tokens a service keeps (the gateway has its own setting, GATEWAY_TOKEN_CACHE_SIZE).
TOKEN_CACHE_ENTRIES = 10000


class TokenCache(Generic[T]):
    """Verified access tokens, keyed by the exact token string, each kept until its ``exp``:
    after the first request a token costs one dictionary lookup instead of a signature check.
    ``of`` turns the verified Principal into what the user needs (the gateway's Caller, or the
    Principal itself) and is cached with it.

    Bounded: when full, the oldest entry goes (tokens share one lifetime, so insertion order is
    close to expiry order). Failures are never cached, so a forged token is verified (and
    refused) every time. Revocation is not this cache's concern: the gateway asks Redis on every
    request, before anything reaches a service, whatever it has cached; a cache hit only skips
    re-checking a signature that cannot have changed. A key removed from the JWKS keeps its
    tokens valid here until they expire (at most the access-token lifetime)."""

    def __init__(self, verifier: TokenVerifier, of: Callable[[Principal], T], *,
                 max_entries: int = TOKEN_CACHE_ENTRIES) -> None:
        self.verifier, self.of, self.max_entries = verifier, of, max_entries
        self._entries: dict[str, tuple[T, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, token: str) -> T:
        entry = self._entries.get(token)
        now = time.time()
        if entry is not None:
            if entry[1] > now:
                return entry[0]
            del self._entries[token]
        principal = await self.verifier.verify(token)
        value = self.of(principal)
        if principal.exp > now and self.max_entries > 0:
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[token] = (value, principal.exp)
        return value


def _same(principal: Principal) -> Principal:
    return principal


TOKEN_VERIFIER = web.AppKey("token_verifier", TokenVerifier)
TOKEN_CACHE = web.AppKey("token_cache", TokenCache[Principal])
PRINCIPAL = web.RequestKey("principal", Principal)


def principal_cache(verifier: TokenVerifier, *, max_entries: int = TOKEN_CACHE_ENTRIES) -> TokenCache[Principal]:
    """The services' cache: verified Principals (``authenticate`` uses it when the app has one)."""
    return TokenCache(verifier, _same, max_entries=max_entries)


def jwks_verifier_ctx(settings: BaseServiceSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context giving the app a TokenVerifier backed by the auth service's JWKS."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession()
        cache = JWKSCache(settings.jwks_url, session)
        verifier = TokenVerifier(cache, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                                 leeway_s=settings.jwt_leeway_s)
        app[TOKEN_VERIFIER] = verifier
        app[TOKEN_CACHE] = principal_cache(verifier)
        yield
        await session.close()
    return ctx


def bearer_token(request: web.Request) -> str:
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenMissing()
    return token.strip()


async def authenticate(request: web.Request) -> Principal:
    """The verified caller of this request (verified once per request)."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        cache = request.app.get(TOKEN_CACHE)
        token = bearer_token(request)
        # A cached token was verified with the same keys and rules; revocation is the gateway's
        # per-request Redis check either way (TokenCache).
        principal = await (cache.get(token) if cache is not None else request.app[TOKEN_VERIFIER].verify(token))
        request[PRINCIPAL] = principal
    if principal.staff and request.method not in READ_METHODS:
        # Checked here, before any handler runs, so no route can forget it (the gateway too).
        raise StaffReadOnly("Platform staff access is read-only.")
    return principal


async def require_permission(request: web.Request, permission: str) -> Principal:
    """The caller, scoped to an organization and holding ``permission`` (403 otherwise)."""
    principal = await authenticate(request)
    if principal.tenant_id is None:
        raise OrganizationScopeRequired()
    if permission not in principal.permissions:
        raise PermissionMissing(f"This action needs the permission '{permission}'.")
    return principal


def is_internal(request: web.Request, settings: BaseServiceSettings) -> bool:
    """True when the request carries the shared internal token (sent only by our own processes)."""
    sent = request.headers.get(INTERNAL_TOKEN_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent.encode(), settings.internal_api_token.get_secret_value().encode())


def client_ip(request: web.Request, settings: BaseServiceSettings) -> str | None:
    """The client address the gateway vouches for; a header a client sent itself is ignored."""
    if is_internal(request, settings):
        ip = request.headers.get(CLIENT_IP_HEADER)
        if ip:
            return ip
    return request.remote
