"""One OpenAPI 3.1 document for the whole public API, and an offline documentation page
(Swagger UI 5 from the swagger-ui-py package, served by the gateway itself: no CDN)."""
from __future__ import annotations

import functools
import importlib
import json
import logging
from pathlib import Path

import swagger_ui
from aiohttp import web

from shared.messaging.asyncapi import build_document as build_asyncapi
from shared.openapi import Operation, build_document

from . import api_spec
from .config import Settings, split_list

log = logging.getLogger("gateway.docs")

STATIC = Path(__file__).resolve().parent / "static"
# Swagger UI 5 renders OpenAPI 3.1 (the older swagger-ui-bundle package's 3.x could not).
SWAGGER_UI = Path(swagger_ui.__file__).resolve().parent / "static"
# Only what the page loads is served (the package also ships the editor).
SWAGGER_FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
                 "favicon-32x32.png": "image/png"}
OPENAPI = web.AppKey("openapi_document", bytes)
ASYNCAPI = web.AppKey("asyncapi_document", bytes)

DESCRIPTION = """\
The public API of the SaaS backend, served through the gateway (the only public entry point).

* **Authentication**: `Authorization: Bearer <access token>` on every route except signup, login,
  refresh, email verification and password reset (the token from the email is the credential),
  the JWKS and the operational routes. Access tokens are EdDSA/ES256 JWTs (15 minutes);
  refresh tokens are opaque and only accepted by `POST /v1/auth/refresh`.
* **API keys** of an organization are sent the same way, `Authorization: Bearer sk_...`.
* **Errors** are RFC 9457 problem details (`application/problem+json`) with a `request_id` and a
  stable `type` URI per cause with its short `code` (`email_taken`, `etag_mismatch`, ...): branch
  on them, never on `detail`. Each operation lists the types it can answer (`x-problem-types` of
  each response, with an example of each); `components.x-problem-types` lists them all.
* **Rate limits**: per user on authenticated routes, per client address on the others;
  answers carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`; 429 carries `Retry-After`.
* **Bodies** are JSON (415 otherwise), at most 1 MiB (413).
* **Lists** are cursor-paginated: `?limit=` (1..100, default 20), `?cursor=`; `{"items", "next_cursor"}`.
  A cursor is opaque and valid only for the list, sort and filters that issued it (422 `invalid_cursor`
  otherwise); it is a position, not a stored reference.
"""


def collect_operations(modules: list[str]) -> tuple[list[Operation], list[str]]:
    """The services' operations (a service's declaration wins over the gateway's own for the
    same route), then the gateway's. Modules that fail to import are reported, not fatal: the
    gateway must route even when a spec is broken; the OpenAPI test catches the gap."""
    merged: dict[tuple[str, str], Operation] = {}
    missing = []
    for name in modules:
        try:
            module = importlib.import_module(name)
            ops = list(module.OPERATIONS)
        except Exception:
            log.exception("API spec module could not be loaded", extra={"spec_module": name})
            missing.append(name)
            continue
        for op in ops:
            merged[(op.method.upper(), op.path)] = op
    for op in api_spec.OPERATIONS:
        merged.setdefault((op.method.upper(), op.path), op)
    return list(merged.values()), missing


def build_openapi(settings: Settings) -> dict[str, object]:
    operations, missing = collect_operations(split_list(settings.api_spec_modules))
    description = DESCRIPTION
    if missing:
        description += "\n\n**Incomplete:** could not load " + ", ".join(missing) + "."
    return build_document(operations, title="SaaS API", version="1.0.0", description=description)


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def asyncapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[ASYNCAPI], content_type="application/json")


@functools.cache
def _file(path: Path) -> bytes:
    """Docs files are read once per process, not on every request."""
    return path.read_bytes()


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(body=_file(STATIC / "docs.html"), content_type="text/html", charset="utf-8")


async def docs_init(request: web.Request) -> web.Response:
    return web.Response(body=_file(STATIC / "docs-init.js"), content_type="text/javascript", charset="utf-8")


def add_docs_routes(app: web.Application, settings: Settings) -> None:
    app[OPENAPI] = json.dumps(build_openapi(settings), separators=(",", ":")).encode()
    app.router.add_get("/openapi.json", openapi_json)
    # The events exchange (AsyncAPI 3), generated from shared.messaging.catalog like shared/asyncapi.json.
    app[ASYNCAPI] = json.dumps(build_asyncapi(), separators=(",", ":")).encode()
    app.router.add_get("/asyncapi.json", asyncapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/docs/init.js", docs_init)
    app.router.add_get("/docs/static/{name}", docs_asset)


async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = SWAGGER_FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return web.Response(body=_file(SWAGGER_UI / name), content_type=content_type,
                        headers={"Cache-Control": "public, max-age=86400"})
