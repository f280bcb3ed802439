"""Fixtures of the tenant-service suite: one app per session on the real test database, a
token factory with a real JWKS endpoint, and helpers that set up organizations and members."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer, unused_port

from shared.testing import TokenFactory, app_dsn, test_settings
from tenant_service.app import create_app
from tenant_service.config import Settings

INTERNAL_TOKEN = f"internal-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def settings(token_factory) -> Settings:
    # The relay and the users consumer stay off here: the suite reads events from the outbox
    # directly, and tests that need the broker start their own with unique names.
    return test_settings(Settings, "tenant", jwks_url=token_factory.jwks_url, internal_api_token=INTERNAL_TOKEN,
                         events_exchange=f"events_test_{uuid.uuid4().hex[:8]}", relay_enabled=False,
                         users_consumer_enabled=False, mailer_enabled=False, db_pool_max=4,
                         # No auth-service in this suite: a profile fetch finds nothing listening (503).
                         auth_url=f"http://127.0.0.1:{unused_port()}", auth_timeout_s=0.5)


@pytest.fixture(scope="session")
async def client(settings):
    c = TestClient(TestServer(create_app(settings)))
    await c.start_server()
    yield c
    await c.close()


@pytest.fixture(scope="session")
async def app_db():
    """A pool as the service's own role (tenant_app): what the audit consumer writes with."""
    pool = await asyncpg.create_pool(app_dsn("tenant"), min_size=1, max_size=2,
                                     server_settings={"search_path": "tenant"})
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def internal_headers():
    def make(**extra) -> dict:
        return {"X-Internal-Token": INTERNAL_TOKEN, **extra}
    return make


@pytest.fixture(scope="session")
def outbox(admin_db):
    """``await outbox(tenant_id, type=None)``: the events the service added for an organization."""
    async def read(tenant_id, type_: str | None = None) -> list[dict]:
        rows = await admin_db.fetch(
            "SELECT payload::text AS p FROM tenant.outbox WHERE payload->>'tenant_id' = $1 "
            "AND ($2::text IS NULL OR routing_key = $2) ORDER BY seq", str(tenant_id), type_)
        return [json.loads(r["p"]) for r in rows]
    return read


@dataclass
class Member:
    user_id: uuid.UUID
    email: str
    role: str
    token: str

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Org:
    id: uuid.UUID
    slug: str
    members: dict[str, Member]

    def __getitem__(self, role: str) -> Member:
        return self.members[role]


class World:
    """Builds organizations through the real routes plus the profile rows the user.registered
    consumer would have written."""

    def __init__(self, client, tf: TokenFactory, admin_db):
        self.client, self.tf, self.admin_db = client, tf, admin_db

    def token(self, user_id, org_id=None, role=None, perms=None) -> str:
        extra = {"perms": sorted(perms)} if perms is not None else {}
        return self.tf.mint(user_id=user_id, tenant_id=org_id, role=role, **extra)

    async def profile(self, user_id, email: str, name: str = "Test User") -> None:
        await self.admin_db.execute(
            "INSERT INTO tenant.user_profile (user_id, email, name, updated_at) VALUES ($1, $2, $3, now()) "
            "ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email", user_id, email, name)

    async def user(self) -> tuple[uuid.UUID, str]:
        uid = uuid.uuid4()
        email = f"u-{uid.hex[:12]}@example.com"
        await self.profile(uid, email)
        return uid, email

    async def org(self, roles=("owner", "admin", "agent", "member")) -> Org:
        """An organization with one member per role in ``roles`` (the first is the creator)."""
        owner_id, owner_email = await self.user()
        resp = await self.client.post("/v1/organizations", json={"name": f"Org {uuid.uuid4().hex[:6]}"},
                                      headers={"Authorization": f"Bearer {self.token(owner_id)}"})
        assert resp.status == 201, await resp.text()
        body = await resp.json()
        org_id = uuid.UUID(body["id"])
        members = {"owner": Member(owner_id, owner_email, "owner", self.token(owner_id, org_id, "owner"))}
        org = Org(org_id, body["slug"], members)
        for role in roles:
            if role not in members:
                members[role] = await self.add_member(org, role)
        return org

    async def add_member(self, org: Org, role: str) -> Member:
        uid, email = await self.user()
        await self.admin_db.execute(
            "INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, $3)", org.id, uid, role)
        return Member(uid, email, role, self.token(uid, org.id, role))

    async def custom_role(self, org: Org, perms, name: str | None = None) -> dict:
        """A custom role of ``org`` written straight to the table (the routes are tested apart)."""
        row = await self.admin_db.fetchrow(
            "INSERT INTO tenant.custom_role (id, organization_id, name, permissions) VALUES ($1, $2, $3, $4) "
            "RETURNING id, name, permissions", uuid.uuid4(), org.id, name or f"role-{uuid.uuid4().hex[:8]}",
            sorted(perms))
        return dict(row)

    async def custom_member(self, org: Org, perms) -> Member:
        """A member holding a new custom role with ``perms``, with a token as auth-service mints it."""
        role = await self.custom_role(org, perms)
        uid, email = await self.user()
        await self.admin_db.execute(
            "INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, $3)",
            org.id, uid, role["name"])
        return Member(uid, email, role["name"], self.token(uid, org.id, role["name"], perms))


@pytest.fixture(scope="session")
def world(client, token_factory, admin_db) -> World:
    return World(client, token_factory, admin_db)


@pytest.fixture(scope="session")
def problem():
    """``await problem(resp, status)``: asserts a problem+json answer and returns its body."""
    async def check(resp, status: int) -> dict:
        text = await resp.text()
        assert resp.status == status, text
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        body = json.loads(text)
        assert body["status"] == status and body["request_id"] == resp.headers["X-Request-ID"]
        return body
    return check
