"""Fixtures of ticket-service's tests: one real app on the test database (served over real
HTTP on an ephemeral port), tokens from a real JWKS, and the membership read model filled
through the consumer's own handler."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from shared.db import create_pool
from shared.messaging import Event
from shared.messaging.consumer import EventConsumer
from shared.testing import TokenFactory, test_settings
from ticket_service.app import create_app
from ticket_service.config import Settings
from ticket_service.consumers.memberships import handle_event

SESSION = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def tokens(token_factory):
    return token_factory


@pytest.fixture(scope="session")
def settings(tokens) -> Settings:
    return test_settings(
        Settings, "ticket", jwks_url=tokens.jwks_url, events_exchange=f"events_test_{SESSION}",
        membership_consumer_group=f"ticket-service.memberships.test_{SESSION}",
        # Events are checked in the outbox table; the relay would publish them to an exchange
        # nobody reads and compete with other suites' relays on the shared test database.
        relay_enabled=False, consumers_enabled=False, db_pool_max=20)


@pytest.fixture(scope="session")
async def client(settings):
    server = TestServer(create_app(settings))
    async with TestClient(server) as c:
        yield c


@pytest.fixture(scope="session")
async def pool(settings):
    p = await create_pool(settings, min_size=1, max_size=20)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def membership_consumer(pool, settings) -> EventConsumer:
    """The real consumer, fed events directly instead of through RabbitMQ (the broker path
    has its own test): inbox, handler and read model are the production ones."""
    return EventConsumer(pool, amqp_url=settings.amqp_url.get_secret_value(), exchange=settings.events_exchange,
                         group=settings.membership_consumer_group, bindings=[], handler=handle_event)


def membership_event(type_: str, org_id, user_id, role: str, *, occurred_at: datetime | None = None,
                     permissions: list[str] | None = None) -> Event:
    data = {"organization_id": str(org_id), "user_id": str(user_id), "role": role}
    if type_ == "membership.role_changed":  # as the catalogue (shared.messaging.catalog) has it
        data["old_role"] = "member" if role != "member" else "agent"
    if permissions is not None:
        data["permissions"] = sorted(permissions)
    return Event(id=uuid.uuid4(), type=type_, occurred_at=occurred_at or datetime.now(UTC),
                 source="tenant-service", tenant_id=org_id, actor={"user_id": None, "ip": None},
                 subject={"type": "membership", "id": f"{org_id}:{user_id}"}, request_id="test", data=data)


@dataclass
class User:
    id: uuid.UUID
    org_id: uuid.UUID
    role: str
    token: str

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


class Org:
    """An organization of the test, with users of each role known to the read model."""

    def __init__(self, tokens: TokenFactory, consumer: EventConsumer):
        self.id = uuid.uuid4()
        self.tokens, self.consumer = tokens, consumer

    async def user(self, role: str = "member", *, member_event: bool = True) -> User:
        user_id = uuid.uuid4()
        if member_event:
            assert await self.consumer.process(membership_event("membership.created", self.id, user_id, role))
        return User(user_id, self.id, role, self.tokens.mint(user_id=user_id, tenant_id=self.id, role=role))

    async def custom(self, permissions, name: str | None = None) -> User:
        """A holder of a custom role, known to the read model, with a token as auth-service mints it."""
        user_id, name = uuid.uuid4(), name or f"custom-{uuid.uuid4().hex[:6]}"
        assert await self.consumer.process(membership_event("membership.created", self.id, user_id, name,
                                                            permissions=sorted(permissions)))
        return User(user_id, self.id, name, self.tokens.mint(user_id=user_id, tenant_id=self.id, role=name,
                                                             perms=sorted(permissions)))


ORG_IDS: list[uuid.UUID] = []


@pytest.fixture
async def org(tokens, membership_consumer) -> Org:
    o = Org(tokens, membership_consumer)
    ORG_IDS.append(o.id)
    return o


@pytest.fixture
async def other_org(tokens, membership_consumer) -> Org:
    o = Org(tokens, membership_consumer)
    ORG_IDS.append(o.id)
    return o


@pytest.fixture(scope="session", autouse=True)
async def _drop_our_outbox_rows(settings):
    """The relay is off in these tests: remove the events they wrote so no other suite's relay
    publishes them later."""
    yield
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("DELETE FROM ticket.outbox WHERE (payload->>'tenant_id')::uuid = ANY($1::uuid[])",
                           ORG_IDS)
    finally:
        await conn.close()


class Api:
    """Helpers the tests share (conftest is not importable under --import-mode=importlib)."""

    def __init__(self, client, pool):
        self.client, self.pool = client, pool
        self.membership_event = membership_event

    async def create_ticket(self, user: User, **body) -> dict:
        body.setdefault("title", f"ticket {uuid.uuid4().hex[:6]}")
        resp = await self.client.post("/v1/tickets", json=body, headers=user.auth)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    async def get(self, user: User, ticket_id):
        return await self.client.get(f"/v1/tickets/{ticket_id}", headers=user.auth)

    async def patch(self, user: User, ticket: dict, body: dict, *, etag: str | None = None):
        headers = {**user.auth, "If-Match": etag or f'"{ticket["version"]}"'}
        return await self.client.patch(f"/v1/tickets/{ticket['id']}", json=body, headers=headers)

    async def list(self, user: User, **params) -> dict:
        resp = await self.client.get("/v1/tickets", params=params, headers=user.auth)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def events_of(self, ticket_id, type_: str | None = None) -> list[dict]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT payload::text FROM outbox WHERE payload->'subject'->>'id' = $1 "
                "AND ($2::text IS NULL OR routing_key = $2) ORDER BY seq", str(ticket_id), type_)
        return [json.loads(r[0]) for r in rows]

    @staticmethod
    async def problem(resp, status: int) -> dict:
        assert resp.status == status, await resp.text()
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        body = await resp.json(content_type=None)
        assert body["status"] == status and body["request_id"] == resp.headers["X-Request-ID"]
        return body


@pytest.fixture
def api(client, pool) -> Api:
    return Api(client, pool)
