"""The gateway: the only public entry point.

Per proxied request: path sanity, bearer token (verified once, then cached until it expires),
one Redis round trip for revocation and the rate limit, body checks, then the request is
forwarded to a replica of its pool with trusted headers only, and the answer streamed back.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from shared.auth import READ_METHODS, JWKSCache, TokenCache, TokenVerifier
from shared.errors import (
    ApiKeyNotAllowed,
    ContentEncodingNotAccepted,
    PayloadTooLarge,
    RouteNotFound,
    StaffReadOnly,
    Unauthorized,
    UnsupportedMediaType,
)
from shared.service import gunicorn_factory
from shared.tasks import cancel_and_wait
from shared.web import LOG_CONTEXT, REQUEST_ID, add_ready_check, base_app, is_identity_encoding, is_json_content_type

from . import api_keys
from .api_keys import ApiKeyResolver
from .auth import API_KEY_PREFIX, Caller, bearer, check_api_key_shape, check_shape, token_cache
from .config import Settings, split_list
from .docs import add_docs_routes
from .edge import Cors, security_headers
from .limits import Guard
from .proxy import UPSTREAM_READY, TrustedProxies, forward, upstream_headers
from .resp import RedisPipe
from .upstreams import UpstreamPool, resolve_forever

# Path prefix -> pool. "/internal/*" is never routed: it matches nothing here.
ROUTES = (("/v1/auth", "auth"), ("/v1/admin", "auth"), ("/v1/organizations", "tenant"),
          ("/v1/invitations", "tenant"), ("/v1/tickets", "ticket"))
# API keys are auth-service's, under the organization's path (matched before the prefixes).
API_KEY_ROUTE = "/v1/organizations/{org_id}/api-keys"
EXACT_ROUTES = (("/.well-known/jwks.json", "auth"), ("/v1/permissions", "tenant"))
# The only proxied routes that need no token.
PUBLIC = frozenset({("POST", "/v1/auth/signup"), ("POST", "/v1/auth/login"), ("POST", "/v1/auth/refresh"),
                    ("GET", "/.well-known/jwks.json"), ("HEAD", "/.well-known/jwks.json"),
                    # The links in emails: the token in the body is the credential (issue 13).
                    ("POST", "/v1/auth/verify-email"), ("POST", "/v1/auth/password-reset/request"),
                    ("POST", "/v1/auth/password-reset")})
READS = READ_METHODS
# User routes an API key never reaches (403): the account, its sessions and its password.
USER_ONLY_PREFIX = "/v1/auth/"


@dataclass
class Gateway:
    """Everything a proxied request needs, opened in the cleanup contexts."""
    settings: Settings
    pools: dict[str, UpstreamPool]
    proxies: TrustedProxies
    internal_token: str
    # Opened by clients_ctx before the app serves anything (no field exists until then).
    session: aiohttp.ClientSession = field(init=False)
    tokens: TokenCache[Caller] = field(init=False)
    keys: ApiKeyResolver = field(init=False)
    guard: Guard = field(init=False)


GATEWAY = web.AppKey("gateway", Gateway)


def _unsafe_path(raw_path: str, path: str) -> bool:
    # Dot segments and encoded separators could be normalised differently upstream and reach a
    # route the gateway never meant to expose (e.g. /internal/*).
    low = raw_path.lower()
    if "%2f" in low or "%5c" in low or "%2e" in low or "\\" in path:
        return True
    return any(seg in (".", "..") for seg in path.split("/"))


def proxy_handler(pool_name: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        gw = request.app[GATEWAY]
        settings = gw.settings
        if _unsafe_path(request.rel_url.raw_path, request.path):
            raise RouteNotFound()
        method = request.method
        caller = None
        client_ip = gw.proxies.client_ip(request)
        if (method, request.path) not in PUBLIC:
            token = bearer(request)  # no token at all is a plain 401, not counted
            try:
                if token.startswith(API_KEY_PREFIX):
                    # The key's first 12 characters name it in logs (API.md); never more of it.
                    request[LOG_CONTEXT] = {"api_key_prefix": token[:12]}
                    check_api_key_shape(token)
                    caller = await gw.keys.caller(token)
                else:
                    check_shape(token)
                    caller = await gw.tokens.get(token)
            except Unauthorized:
                # Forged, unknown-kid, expired or malformed tokens count against the address.
                await gw.guard.bad_token(client_ip)
                raise
        quota = await gw.guard.check(caller, client_ip, write=method not in READS)
        if caller is not None:
            if caller.api_key_id is not None and request.path.startswith(USER_ONLY_PREFIX):
                raise ApiKeyNotAllowed("API keys cannot use the account routes; sign in as a user.")
            if caller.staff and method not in READS:
                raise StaffReadOnly("Platform staff access is read-only.")
        if request.body_exists:
            length = request.content_length
            if length is not None and length > settings.max_body_bytes:
                raise PayloadTooLarge(f"The body may be at most {settings.max_body_bytes} bytes.")
            if not is_json_content_type(request.headers.get("Content-Type", "")):
                raise UnsupportedMediaType("Send the body as application/json.")
            if not is_identity_encoding(request.headers.get("Content-Encoding", "")):
                raise ContentEncodingNotAccepted()
        headers = upstream_headers(request, request_id=request[REQUEST_ID], client_ip=client_ip,
                                   internal_token=gw.internal_token)
        if caller is not None and caller.forward_token is not None:
            # The key never travels further than the gateway: services get its minted token.
            headers["Authorization"] = "Bearer " + caller.forward_token
        return await forward(request, gw.pools[pool_name], gw.session, headers=headers,
                             max_body=settings.max_body_bytes, buffer_max=settings.buffer_response_max_bytes,
                             extra_headers=quota.headers())
    return handle


def clients_ctx(gw: Gateway) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        s = gw.settings
        gw.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=s.total_timeout_s, sock_connect=s.connect_timeout_s),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=s.upstream_keepalive_s),
            # Never keep cookies between clients; never add headers the client did not send.
            cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"))
        jwks_session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        jwks = JWKSCache(s.jwks_url, jwks_session, min_refetch_s=s.jwks_min_refetch_s)
        verifier = TokenVerifier(jwks, issuer=s.jwt_issuer, audience=s.jwt_audience, leeway_s=s.jwt_leeway_s)
        gw.tokens = token_cache(verifier, max_entries=s.token_cache_size)
        gw.keys = ApiKeyResolver(verifier, gw.pools["auth"], gw.session, internal_token=gw.internal_token,
                                 timeout_s=s.api_key_resolve_timeout_s, max_entries=s.token_cache_size)
        redis = RedisPipe(s.redis_url, timeout_s=s.redis_timeout_s)
        gw.guard = Guard(redis, window_s=s.rate_limit_window_s, public_limit=s.rate_limit_public,
                         user_limit=s.rate_limit_user, api_key_limit=s.rate_limit_api_key, retry_s=s.redis_retry_s,
                         down_writes=s.redis_down_writes, bad_token_limit=s.rate_limit_bad_tokens)
        try:
            await jwks.refresh()  # warm the keys; an unknown kid refetches later anyway
        except Exception:
            jwks._last_fetch = 0.0  # auth not up yet: the first token may fetch at once
        usage = asyncio.create_task(api_keys.flush_usage_forever(gw.keys, s.api_key_usage_flush_s))
        yield
        await api_keys.stop(usage, gw.keys)
        await gw.session.close()
        await jwks_session.close()
        await redis.close()
    return ctx


def resolver_ctx(gw: Gateway) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pools = [p for p in gw.pools.values() if p.needs_resolution()]
        for pool in pools:
            await pool.resolve()
        task = asyncio.create_task(resolve_forever(pools, gw.settings.resolve_interval_s)) if pools else None
        yield
        await cancel_and_wait(task)
    return ctx


async def check_redis(app: web.Application) -> None:
    await app[GATEWAY].guard.redis.ping()


def pool_check(name: str) -> Callable[[web.Application], Awaitable[dict[str, int]]]:
    async def check(app: web.Application) -> dict[str, int]:
        gw = app[GATEWAY]
        pool = gw.pools[name]
        timeout = aiohttp.ClientTimeout(total=max(0.1, gw.settings.ready_timeout_s - 0.1))

        async def ready(base: str) -> bool:
            try:
                async with gw.session.get(base + "/health/ready", timeout=timeout) as r:
                    return r.status == 200
            except (TimeoutError, aiohttp.ClientError):
                return False
        results = await asyncio.gather(*(ready(r.base) for r in pool.replicas))
        state = {"ready_replicas": sum(results), "replicas": len(results)}
        UPSTREAM_READY.labels(name).set(state["ready_replicas"])
        if not any(results):
            raise PoolNotReady(state)
        return state
    return check


class PoolNotReady(Exception):
    pass


def create_app(settings: Settings) -> web.Application:
    cors = Cors(settings)
    app = base_app(settings, middlewares=[cors.middleware()])
    pools = {
        "auth": UpstreamPool("auth", split_list(settings.auth_upstreams), eject_s=settings.upstream_eject_s),
        "tenant": UpstreamPool("tenant", split_list(settings.tenant_upstreams), eject_s=settings.upstream_eject_s),
        "ticket": UpstreamPool("ticket", split_list(settings.ticket_upstreams), eject_s=settings.upstream_eject_s),
    }
    gw = Gateway(settings=settings, pools=pools, proxies=TrustedProxies(split_list(settings.trusted_proxies)),
                 internal_token=settings.internal_api_token.get_secret_value())
    app[GATEWAY] = gw
    app.cleanup_ctx.append(clients_ctx(gw))
    app.cleanup_ctx.append(resolver_ctx(gw))
    app.on_response_prepare.append(security_headers(settings, cors))

    add_docs_routes(app, settings)
    app.router.add_route("*", API_KEY_ROUTE, proxy_handler("auth"))
    app.router.add_route("*", API_KEY_ROUTE + "/{tail:.*}", proxy_handler("auth"))
    for prefix, pool in ROUTES:
        handler = proxy_handler(pool)
        app.router.add_route("*", prefix, handler)
        app.router.add_route("*", prefix + "/{tail:.*}", handler)
    for path, pool in EXACT_ROUTES:
        app.router.add_route("*", path, proxy_handler(pool))

    # Not required: the gateway stays ready while it can serve anything. Redis down still serves
    # reads, one pool down still serves the others; failing readiness would take every gateway
    # pod out at once and turn one failing dependency into a total outage. What is down shows in
    # the body ("degraded") and in the ready_check_ok / gateway_upstream_ready_replicas metrics.
    add_ready_check(app, "redis", check_redis, required=False)
    for name in pools:
        add_ready_check(app, f"upstream_{name}", pool_check(name), required=False)
    return app


gunicorn_app = gunicorn_factory(Settings, create_app)
