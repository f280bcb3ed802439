"""Helpers for the test suites: settings pointing at the test database, migrating it, and a
TCP proxy that can cut a real PostgreSQL/RabbitMQ/Redis connection to simulate an outage."""
from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from .dbsetup import setup as db_setup
from .migrations import SHARED_MIGRATIONS, Runner

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

    from .config import BaseServiceSettings

SettingsT = TypeVar("SettingsT", bound="BaseServiceSettings")

REPO = Path(__file__).resolve().parents[2]
PG_HOSTPORT = os.environ.get("TEST_PG_HOSTPORT", "127.0.0.1:5432")
# Several checkouts can run their suites side by side on one machine without touching each
# other: a database-name prefix, a Redis server, a RabbitMQ virtual host and a port offset each.
DB_PREFIX = os.environ.get("TEST_DB_PREFIX", "saas")
TEST_DATABASE = os.environ.get("TEST_DATABASE_NAME", f"{DB_PREFIX}_test")
REDIS_HOST, _, _redis_port = os.environ.get("TEST_REDIS_HOSTPORT", "127.0.0.1:6379").partition(":")
REDIS_PORT = int(_redis_port or 6379)
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
AMQP_HOST, AMQP_PORT = "127.0.0.1", int(AMQP_URL.rsplit("@", 1)[-1].split("/")[0].partition(":")[2] or 5672)
PORT_OFFSET = int(os.environ.get("TEST_PORT_OFFSET", "0"))


def redis_url(db: int, port: int | None = None) -> str:
    return f"redis://{REDIS_HOST}:{port or REDIS_PORT}/{db}"


def amqp_url_via(port: int) -> str:
    """``AMQP_URL`` reached through another local port (a proxy), same credentials and vhost."""
    creds, _, rest = AMQP_URL.partition("@")
    vhost = rest.partition("/")[2]
    return f"{creds}@127.0.0.1:{port}/{vhost}"
ADMIN_DSN = os.environ.get("ADMIN_DATABASE_URL", f"postgresql://postgres@{PG_HOSTPORT}/postgres")
SERVICE_MIGRATIONS = {
    "auth": REPO / "auth-service" / "migrations",
    "tenant": REPO / "tenant-service" / "migrations",
    "ticket": REPO / "ticket-service" / "migrations",
}


def app_dsn(schema: str, database: str = TEST_DATABASE) -> str:
    return f"postgresql://{schema}_app@{PG_HOSTPORT}/{database}"


def owner_dsn(schema: str, database: str = TEST_DATABASE) -> str:
    return f"postgresql://{schema}_owner@{PG_HOSTPORT}/{database}"


def admin_dsn(database: str = TEST_DATABASE) -> str:
    return f"postgresql://postgres@{PG_HOSTPORT}/{database}"


async def prepare_test_database(database: str = TEST_DATABASE) -> None:
    """Create roles and schemas and apply every service's migrations (idempotent)."""
    await db_setup(ADMIN_DSN, database)
    for schema, own in SERVICE_MIGRATIONS.items():
        await Runner(owner_dsn(schema, database), schema, [SHARED_MIGRATIONS, own], out=open(os.devnull, "w")).up()


def test_settings(settings_cls: type[SettingsT], schema: str, **overrides: Any) -> SettingsT:
    # overrides: any setting of settings_cls, validated by pydantic like the environment's values.
    values: dict[str, Any] = dict(database_url=app_dsn(schema), migrate_database_url=owner_dsn(schema),
                                  db_schema=schema, db_connect_attempts=3, relay_poll_interval_s=0.2,
                                  amqp_url=AMQP_URL)
    values.update(overrides)
    return settings_cls(**values)


# A helper, not a test, wherever it is imported. pytest reads this attribute; mypy cannot
# declare an attribute on a function.
test_settings.__test__ = False  # type: ignore[attr-defined]


class TcpProxy:
    """Forwards a local port to a real server; ``cut()`` drops every connection and refuses
    new ones until ``restore()``, as if the server had become unreachable. ``delay_s`` holds
    every chunk that long before passing it on, in both directions (a slow network or server)."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.delay_s = 0.0

    async def start(self, port: int = 0) -> TcpProxy:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port or self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if self.delay_s:
                        await asyncio.sleep(self.delay_s)
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        for t in (asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))):
            self._pipes.add(t)
            t.add_done_callback(self._pipes.discard)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._writers.clear()
        for t in list(self._pipes):
            t.cancel()

    async def restore(self) -> None:
        await self.start(self.port)

    async def close(self) -> None:
        await self.cut()


class TokenFactory:
    """Mints access tokens exactly as auth-service does (EdDSA, ``typ: at+jwt``, the contract's
    claims) with a key generated for the test run, and serves its JWKS over real HTTP."""

    def __init__(self, *, issuer: str = "saas-auth", audience: str = "saas-api", kid: str | None = None):
        import uuid as _uuid

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        self.issuer, self.audience = issuer, audience
        self.kid = kid or f"test-{_uuid.uuid4().hex[:8]}"
        self.private_key = Ed25519PrivateKey.generate()
        self.server: TestServer | None = None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        import json as _json

        import jwt as _jwt
        jwk = _json.loads(_jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": [jwk]}

    def mint(self, *, user_id: UUID | str | None = None, tenant_id: UUID | str | None = None,
             role: str | None = None, session_id: UUID | str | None = None, ttl_s: int = 900,
             iat: int | None = None, **extra: Any) -> str:
        # extra: further claims, any JSON value (tests forge odd tokens with them).
        import time as _time
        import uuid as _uuid

        import jwt as _jwt
        now = _time.time()
        iat = int(now) if iat is None else iat
        claims: dict[str, Any] = {"iss": self.issuer, "aud": self.audience, "sub": str(user_id or _uuid.uuid4()),
                  "sid": str(session_id or _uuid.uuid4()), "iat": iat, "iat_ms": int(now * 1000),
                  "exp": iat + ttl_s, "jti": _uuid.uuid4().hex}
        if tenant_id is not None:
            claims["tid"] = str(tenant_id)
        if role is not None:
            claims["role"] = role
        claims.update(extra)
        return _jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid, "typ": "at+jwt"})

    async def serve_jwks(self) -> str:
        """Start a real HTTP server publishing the JWKS; returns its URL."""
        from aiohttp import web as _web
        from aiohttp.test_utils import TestServer

        app = _web.Application()

        async def jwks(request: _web.Request) -> _web.Response:
            return _web.json_response(self.jwks())
        app.router.add_get("/.well-known/jwks.json", jwks)
        self.server = TestServer(app)
        await self.server.start_server()
        return str(self.server.make_url("/.well-known/jwks.json"))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


def cpu_model() -> str:
    """The CPU model, for the machine line of benchmark and drill reports."""
    import platform
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# A benchmark's RESULTS.md: the tables it writes, then the hand-written notes (what each change
# bought, how it was measured) between these markers, which every run carries over.
NOTES_BEGIN, NOTES_END = "<!-- notes:begin -->", "<!-- notes:end -->"


def kept_notes(results: Path) -> str:
    """The hand-written part of a benchmark's RESULTS.md (between the notes markers), for the
    benchmark to write again below its new tables; empty if there is none."""
    try:
        text = results.read_text()
    except OSError:
        return ""
    start, end = text.find(NOTES_BEGIN), text.find(NOTES_END)
    if start < 0 or end < start:
        return ""
    return "\n" + text[start:end + len(NOTES_END)] + "\n"
