"""Sign-ins answer from the memberships an earlier sign-in fetched (auth_service/tenants/cache.py)
while no revocation mark made them stale, with tokens as old as those memberships: the gateway's
rule (a token with ``iat_ms`` before a mark is refused) then covers every change the kept list
missed. The real tenant-service answers; its calls are counted, not replaced."""
import asyncio
import uuid
from datetime import UTC, datetime

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from auth_service.app import MEMBERSHIP_CONSUMER, create_app
from auth_service.tenants.client import TENANT_CLIENT
from shared import redis_keys
from shared.messaging import Event
from shared.messaging.testing import delete_broker_objects


@pytest.fixture(scope="module")
async def app_client(make_settings, settings):
    """An auth app with its membership consumer (the marks come from its real handler)."""
    group = f"auth-test-cache-{uuid.uuid4().hex[:8]}"
    # Racing sign-ins of one account are attempts in flight at once: no throttle in the way.
    c = TestClient(TestServer(create_app(make_settings(tenant_url=settings.tenant_url, membership_consumer_enabled=True,
                                                       membership_consumer_group=group,
                                                       login_max_failures_per_account_address=1000,
                                                       login_max_failures_per_account=1000))))
    await c.start_server()
    yield c
    await c.close()
    await delete_broker_objects(settings.amqp_url.get_secret_value(), groups=[group])


def count_tenant_calls(c: TestClient) -> list[str]:
    """The user ids the app asks tenant-service about from now on, in order (the real call runs)."""
    tenant = c.server.app[TENANT_CLIENT]
    asked: list[str] = []
    real = tenant.memberships

    async def memberships(user_id, **kw):
        asked.append(str(user_id))
        return await real(user_id, **kw)
    tenant.memberships = memberships
    return asked


@pytest.fixture
def tenant_calls(app_client):
    yield count_tenant_calls(app_client)
    del app_client.server.app[TENANT_CLIENT].memberships


def claims(body: dict) -> dict:
    return jwt.decode(body["tokens"]["access_token"], options={"verify_signature": False})


async def login(c, acct, organization_id: str | None = None) -> dict:
    payload = {"email": acct.email, "password": acct.password}
    if organization_id:
        payload["organization_id"] = organization_id
    resp = await c.post("/v1/auth/login", json=payload)
    body = await resp.json()
    assert resp.status == 200, body
    return claims(body)


def membership_event(type_: str, user_id: str, org_id: str, **data) -> Event:
    return Event(id=uuid.uuid4(), type=type_, occurred_at=datetime.now(UTC), source="tenant-service",
                 tenant_id=uuid.UUID(org_id), actor={"user_id": None, "ip": None},
                 subject={"type": "membership", "id": str(uuid.uuid4())}, request_id="req-test-cache",
                 data={"organization_id": org_id, "user_id": user_id, **data})


async def test_a_second_sign_in_answers_from_the_kept_memberships(app_client, signup, tenant_calls):
    owner = await signup(organization_name=f"Kept {uuid.uuid4().hex[:6]}", c=app_client)
    first = await login(app_client, owner)
    second = await login(app_client, owner)
    assert tenant_calls == [owner.id]  # asked once
    assert (second["tid"], second["role"], second["perms"]) == (first["tid"], first["role"], first["perms"])
    assert second["tid"] == owner.organization_id
    # The second token is as old as the memberships it was made from.
    assert second["iat_ms"] == first["iat_ms"] and second["sid"] != first["sid"]


async def test_a_mark_makes_the_kept_memberships_stale(app_client, signup, tenant_calls, admin_db, redis):
    owner = await signup(organization_name=f"Marked {uuid.uuid4().hex[:6]}", c=app_client)
    member = await signup(c=app_client)
    await admin_db.execute("INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, 'member')",
                           uuid.UUID(owner.organization_id), uuid.UUID(member.id))
    before = await login(app_client, member)
    assert before["role"] == "member"
    # The role changes in tenant-service, and its event reaches the consumer: the mark.
    await admin_db.execute("UPDATE tenant.membership SET role = 'agent' WHERE organization_id = $1 AND user_id = $2",
                           uuid.UUID(owner.organization_id), uuid.UUID(member.id))
    consumer = app_client.server.app[MEMBERSHIP_CONSUMER]
    assert await consumer.process(membership_event("membership.role_changed", member.id, owner.organization_id,
                                                   old_role="member", role="agent"))
    mark = int(await redis.get(redis_keys.user_org_stale(member.id, owner.organization_id)))
    after = await login(app_client, member)
    assert tenant_calls == [member.id, member.id]  # asked again
    assert after["role"] == "agent" and after["iat_ms"] >= mark > before["iat_ms"]
    # And the fresh answer is kept in turn.
    again = await login(app_client, member)
    assert tenant_calls == [member.id, member.id] and again["role"] == "agent"


async def test_an_organization_the_kept_list_lacks_is_asked_for(app_client, signup, tenant_calls, admin_db):
    first = await signup(organization_name=f"First {uuid.uuid4().hex[:6]}", c=app_client)
    second = await signup(organization_name=f"Second {uuid.uuid4().hex[:6]}", c=app_client)
    await login(app_client, first)  # kept: one membership
    # Added to another organization since (additions make no mark).
    await admin_db.execute("INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, 'agent')",
                           uuid.UUID(second.organization_id), uuid.UUID(first.id))
    scoped = await login(app_client, first, organization_id=second.organization_id)
    assert scoped["tid"] == second.organization_id and scoped["role"] == "agent"
    # Without an organization the oldest membership is chosen, which the kept list has.
    oldest = await login(app_client, first)
    assert oldest["tid"] == first.organization_id
    assert tenant_calls == [first.id, first.id]


async def test_no_membership_is_never_kept(app_client, signup, tenant_calls, admin_db):
    loner = await signup(c=app_client)
    assert "tid" not in await login(app_client, loner)
    # Their first membership counts at once: an empty answer was not kept.
    owner = await signup(organization_name=f"Joined {uuid.uuid4().hex[:6]}", c=app_client)
    await admin_db.execute("INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, 'member')",
                           uuid.UUID(owner.organization_id), uuid.UUID(loner.id))
    assert (await login(app_client, loner))["tid"] == owner.organization_id
    assert tenant_calls == [loner.id, loner.id]


async def test_kept_memberships_expire_and_can_be_switched_off(make_settings, settings, start_app, signup):
    for ttl, expected in ((1, 2), (0, 3)):
        c = await start_app(make_settings(tenant_url=settings.tenant_url, membership_cache_ttl_s=ttl))
        asked = count_tenant_calls(c)
        owner = await signup(organization_name=f"Ttl {uuid.uuid4().hex[:6]}", c=c)
        await login(c, owner)
        await login(c, owner)  # ttl 1: kept; ttl 0: asked
        await asyncio.sleep(1.1)
        await login(c, owner)  # ttl 1: expired
        assert len(asked) == expected, ttl


def test_the_lifetime_never_outlives_a_revocation_mark(make_settings):
    s = make_settings(membership_cache_ttl_s=10_000, access_token_ttl_s=600)
    assert s.membership_cache_ttl_ms == 600_000 <= s.revocation_ttl_s * 1000


async def test_sign_ins_racing_a_removal_never_make_a_token_the_mark_lets_through(app_client, signup, admin_db,
                                                                                   redis):
    """Many sign-ins of one member while the membership is removed and its event applied, five
    times: every token scoped to the organization is older than the removal's mark (the gateway
    refuses it), and every sign-in that began after the mark was committed is not scoped to it."""
    consumer = app_client.server.app[MEMBERSHIP_CONSUMER]
    for _ in range(5):
        owner = await signup(organization_name=f"Race {uuid.uuid4().hex[:6]}", c=app_client)
        member = await signup(c=app_client)
        await admin_db.execute("INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, "
                               "'member')", uuid.UUID(owner.organization_id), uuid.UUID(member.id))
        assert (await login(app_client, member))["tid"] == owner.organization_id  # kept
        async def remove(org_id: str, user_id: str, committed_at: list[float]) -> None:
            await asyncio.sleep(0.01)
            await admin_db.execute("DELETE FROM tenant.membership WHERE organization_id = $1 AND user_id = $2",
                                   uuid.UUID(org_id), uuid.UUID(user_id))
            assert await consumer.process(membership_event("membership.removed", user_id, org_id, role="member"))
            committed_at.append(asyncio.get_running_loop().time())

        async def sign_in(acct, delay: float) -> tuple[float, dict]:
            await asyncio.sleep(delay)
            started = asyncio.get_running_loop().time()
            return started, await login(app_client, acct)
        committed_at: list[float] = []
        results = await asyncio.gather(remove(owner.organization_id, member.id, committed_at),
                                       *(sign_in(member, i * 0.004) for i in range(24)))
        mark = int(await redis.get(redis_keys.user_org_stale(member.id, owner.organization_id)))
        for started, token in results[1:]:
            if token.get("tid") == owner.organization_id:
                assert token["iat_ms"] < mark  # refused by the gateway from now on
            if started > committed_at[0]:
                assert token.get("tid") != owner.organization_id
        assert "tid" not in await login(app_client, member)
