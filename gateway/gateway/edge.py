"""Browser-facing edges: CORS (preflight answered here) and security headers on every answer."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from shared.errors import CorsNotAllowed

from .config import Settings, split_list

CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_REQUEST_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, X-Request-ID"
CORS_EXPOSED = ("X-Request-ID, ETag, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, "
                "RateLimit-Reset, WWW-Authenticate")

PREFLIGHT = web.RequestKey("cors_preflight", bool)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI: its own scripts and styles from this origin only (it sets inline style attributes
# and uses data: images); it fetches /openapi.json from here; nothing from any other host.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'none'")


class Cors:
    def __init__(self, settings: Settings):
        origins = split_list(settings.cors_origins)
        self.any_origin = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")
        self.enabled = bool(origins)
        self.max_age = str(settings.cors_max_age_s)

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and (self.any_origin or origin in self.origins)

    def middleware(self) -> Middleware:
        cors = self

        @web.middleware
        async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
            if (request.method == "OPTIONS" and "Origin" in request.headers
                    and "Access-Control-Request-Method" in request.headers):
                request[PREFLIGHT] = True
                origin = request.headers["Origin"]
                wanted = request.headers["Access-Control-Request-Method"].strip().upper()
                if not cors.allows(origin):
                    raise CorsNotAllowed("Cross-origin requests from this origin are not allowed.")
                if wanted not in CORS_METHODS:
                    raise CorsNotAllowed("This method is not allowed cross-origin.")
                return web.Response(status=204, headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ", ".join(CORS_METHODS),
                    "Access-Control-Allow-Headers": CORS_REQUEST_HEADERS,
                    "Access-Control-Max-Age": cors.max_age,
                })
            return await handler(request)
        return preflight


def security_headers(settings: Settings,
                     cors: Cors) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    hsts = settings.hsts.strip()

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        h = response.headers
        h["Server"] = "gateway"   # not the framework and version
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "no-referrer"
        h["Content-Security-Policy"] = DOCS_CSP if request.path.startswith("/docs") else API_CSP
        if hsts:
            h["Strict-Transport-Security"] = hsts
        if request.get(PREFLIGHT):
            h.add("Vary", "Origin")
            return
        # (Access-Control-* headers of upstream answers were dropped when they were copied.)
        if cors.enabled:
            h.add("Vary", "Origin")
            origin = request.headers.get("Origin")
            if origin is not None and cors.allows(origin):
                h["Access-Control-Allow-Origin"] = origin
                h["Access-Control-Expose-Headers"] = CORS_EXPOSED
    return on_prepare
