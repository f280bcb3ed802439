"""Fixtures of the auth-service suite: the real auth app and the REAL tenant-service app, each
on an ephemeral port and pointing at the other (auth asks tenant for memberships; tenant
verifies auth's tokens through auth's JWKS), on the real test database and Redis db 1."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer, unused_port

from auth_service.app import create_app
from auth_service.config import Settings
from auth_service.keys.ring import write_new_key
from shared.testing import AMQP_URL, redis_url, test_settings
from tenant_service.app import create_app as create_tenant_app
from tenant_service.config import Settings as TenantSettings

INTERNAL_TOKEN = f"internal-{uuid.uuid4().hex}"
REDIS_URL = redis_url(1)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth-keys")
    write_new_key(d)
    return d


@pytest.fixture(scope="session")
async def exchange():
    name = f"events_test_{uuid.uuid4().hex[:8]}"
    yield name
    from shared.messaging.testing import delete_broker_objects
    await delete_broker_objects(AMQP_URL, exchange=name)


@pytest.fixture(scope="session")
def auth_port() -> int:
    return unused_port()


@pytest.fixture(scope="session")
async def tenant_server(auth_port, exchange):
    settings = test_settings(TenantSettings, "tenant", internal_api_token=INTERNAL_TOKEN, events_exchange=exchange,
                             jwks_url=f"http://127.0.0.1:{auth_port}/.well-known/jwks.json",
                             relay_enabled=False, users_consumer_enabled=False, mailer_enabled=False, db_pool_max=4,
                             auth_url=f"http://127.0.0.1:{auth_port}")
    server = TestServer(create_tenant_app(settings))
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture(scope="session")
def make_settings(keys_dir, exchange):
    def make(**overrides) -> Settings:
        values = dict(redis_url=REDIS_URL, internal_api_token=INTERNAL_TOKEN, events_exchange=exchange,
                      relay_enabled=False, membership_consumer_enabled=False, signing_keys_dir=str(keys_dir),
                      mailer_enabled=False, invitation_consumer_enabled=False, smtp_url="smtp://127.0.0.1:9",
                      argon2_allow_weak=True, argon2_time_cost=1, argon2_memory_kib=1024, argon2_threads=2,
                      login_max_failures_per_ip=100_000, db_pool_max=4, tenant_url="http://127.0.0.1:9")
        values.update(overrides)
        return test_settings(Settings, "auth", **values)
    return make


@pytest.fixture(scope="session")
def settings(make_settings, tenant_server) -> Settings:
    return make_settings(tenant_url=str(tenant_server.make_url("")).rstrip("/"))


@pytest.fixture(scope="session")
async def client(settings, auth_port):
    c = TestClient(TestServer(create_app(settings), port=auth_port))
    await c.start_server()
    yield c
    await c.close()


@pytest.fixture(scope="session")
async def tenant_client(tenant_server):
    c = TestClient(tenant_server)
    yield c


@pytest.fixture
async def start_app():
    """``await start_app(settings)``: another auth app (other limits, keys, tenant URL)."""
    started = []

    async def start(settings: Settings) -> TestClient:
        c = TestClient(TestServer(create_app(settings)))
        await c.start_server()
        started.append(c)
        return c
    yield start
    for c in started:
        await c.close()


@pytest.fixture(scope="session")
async def redis():
    r = aioredis.Redis.from_url(REDIS_URL)
    yield r
    await r.aclose()


@pytest.fixture(scope="session")
def events(admin_db):
    """``await events(type, subject_id)``: the events the service added to its outbox."""
    async def read(type_: str, subject_id) -> list[dict]:
        rows = await admin_db.fetch(
            "SELECT payload::text AS p FROM auth.outbox WHERE routing_key = $1 AND payload->'subject'->>'id' = $2 "
            "ORDER BY seq", type_, str(subject_id))
        return [json.loads(r["p"]) for r in rows]
    return read


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def email() -> str:
    return unique_email()


@dataclass
class Account:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    organization_id: str | None
    body: dict

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture(scope="session")
def signup(client):
    """``await signup(organization_name=None)``: a fresh account (and organization)."""
    async def make(*, organization_name: str | None = None, password: str = PASSWORD,
                   email: str | None = None, c=None) -> Account:
        body = {"email": email or unique_email(), "password": password, "name": "Test User"}
        if organization_name:
            body["organization_name"] = organization_name
        resp = await (c or client).post("/v1/auth/signup", json=body)
        data = await resp.json()
        assert resp.status == 201, data
        org = data.get("organization")
        return Account(id=data["user"]["id"], email=body["email"], password=password,
                       access_token=data["tokens"]["access_token"], refresh_token=data["tokens"]["refresh_token"],
                       organization_id=org["id"] if org else None, body=data)
    return make


@pytest.fixture(scope="session")
def new_email():
    return unique_email


@pytest.fixture(scope="session")
def bearer():
    return lambda token: {"Authorization": f"Bearer {token}"}
