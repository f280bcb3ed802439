"""The membership consumer: role changes, removals and deleted organizations become the
revocation marks of shared/README.md, and sessions scoped to a deleted organization end."""
import asyncio
import time
import uuid
from datetime import UTC, datetime

import aio_pika
import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from auth_service.app import MEMBERSHIP_CONSUMER, create_app
from shared.messaging import Event, MalformedEvent
from shared.messaging.outbox import event_json
from shared.messaging.testing import assert_poison_is_dead_lettered, delete_broker_objects, wait_connected


@pytest.fixture(scope="module")
async def consumer_app(make_settings, settings):
    group = f"auth-test-memberships-{uuid.uuid4().hex[:8]}"
    c = TestClient(TestServer(create_app(make_settings(tenant_url=settings.tenant_url, membership_consumer_enabled=True,
                                                       membership_consumer_group=group))))
    await c.start_server()
    yield c
    await c.close()
    await delete_broker_objects(settings.amqp_url.get_secret_value(), groups=[group])


def event(type_: str, *, tenant_id, data: dict, subject_id: str | None = None) -> Event:
    return Event(id=uuid.uuid4(), type=type_, occurred_at=datetime.now(UTC), source="tenant-service",
                 tenant_id=tenant_id, actor={"user_id": None, "ip": None},
                 subject={"type": "membership" if type_.startswith("membership") else "organization",
                          "id": subject_id or str(tenant_id)},
                 request_id="req-test-0001", data=data)


async def test_role_change_and_removal_set_the_user_org_mark(consumer_app, redis):
    consumer = consumer_app.server.app[MEMBERSHIP_CONSUMER]
    user_id, org_id = uuid.uuid4(), uuid.uuid4()
    key = f"rv:ut:{user_id}:{org_id}"
    before = int(time.time() * 1000)
    ev = event("membership.role_changed", tenant_id=org_id,
               data={"organization_id": str(org_id), "user_id": str(user_id), "old_role": "agent", "role": "member"})
    assert await consumer.process(ev) is True
    mark = int(await redis.get(key))
    assert before <= mark <= int(time.time() * 1000)
    assert 0 < await redis.ttl(key) <= 910
    # A redelivered event has no second effect; a later one moves the mark forward only.
    assert await consumer.process(ev) is False
    await asyncio.sleep(0.01)
    assert await consumer.process(event("membership.removed", tenant_id=org_id, data={
        "organization_id": str(org_id), "user_id": str(user_id), "role": "member"})) is True
    assert int(await redis.get(key)) > mark


async def test_role_changes_mark_tokens_carrying_the_role(consumer_app, redis):
    consumer = consumer_app.server.app[MEMBERSHIP_CONSUMER]
    org_id, role_id = uuid.uuid4(), str(uuid.uuid4())

    def role_event(type_, **data):
        return Event(id=uuid.uuid4(), type=type_, occurred_at=datetime.now(UTC), source="tenant-service",
                     tenant_id=org_id, actor={"user_id": None, "ip": None}, subject={"type": "role", "id": role_id},
                     request_id="req-test-0002", data={"role_id": role_id, "description": "", **data})

    # a description change leaves tokens alone
    assert await consumer.process(role_event("role.updated", name="Triage", permissions=["tickets:read_all"],
                                             changes={"description": ["", "x"]})) is True
    assert await redis.get(f"rv:r:{org_id}:Triage") is None
    before = int(time.time() * 1000)
    assert await consumer.process(role_event("role.updated", name="Triage", permissions=["tickets:read_all"],
                                             changes={"permissions": [["tickets:read_all", "tickets:triage"],
                                                                      ["tickets:read_all"]]})) is True
    mark = int(await redis.get(f"rv:r:{org_id}:Triage"))
    assert before <= mark <= int(time.time() * 1000) and 0 < await redis.ttl(f"rv:r:{org_id}:Triage") <= 910
    # a rename marks the old name (the one live tokens carry)
    assert await consumer.process(role_event("role.updated", name="Sorters", permissions=["tickets:read_all"],
                                             changes={"name": ["Old Name", "Sorters"]})) is True
    assert await redis.get(f"rv:r:{org_id}:Old Name") is not None
    assert await redis.get(f"rv:r:{org_id}:Sorters") is None
    assert await consumer.process(role_event("role.deleted", name="Gone", permissions=[])) is True
    assert await redis.get(f"rv:r:{org_id}:Gone") is not None
    # malformed: poison (dead-lettered by the consumer, never retried), no mark
    with pytest.raises(MalformedEvent):
        await consumer.process(role_event("role.deleted", name=None, permissions=[]))


async def test_organization_deleted_marks_the_org_and_ends_its_sessions(consumer_app, client, signup, redis, events,
                                                                        bearer):
    consumer = consumer_app.server.app[MEMBERSHIP_CONSUMER]
    acct = await signup(organization_name=f"Doomed {uuid.uuid4().hex[:6]}")
    bystander = await signup()
    org_id = uuid.UUID(acct.organization_id)
    sid = jwt.decode(acct.access_token, options={"verify_signature": False})["sid"]
    assert await consumer.process(event("organization.deleted", tenant_id=org_id, data={})) is True
    assert int(await redis.get(f"rv:t:{org_id}")) <= int(time.time() * 1000)
    assert 0 < await redis.ttl(f"rv:t:{org_id}") <= 910
    assert await redis.get(f"rv:sid:{sid}") == b"1"
    [ev] = await events("auth.session_revoked", sid)
    assert ev["data"] == {"user_id": acct.id, "session_id": sid, "reason": "organization_deleted"}
    assert ev["tenant_id"] == str(org_id)
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})).status == 401
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": bystander.refresh_token})).status == 200


async def test_events_arrive_through_the_real_broker(consumer_app, settings, redis):
    consumer = consumer_app.server.app[MEMBERSHIP_CONSUMER]
    for _ in range(100):
        if consumer.connected:
            break
        await asyncio.sleep(0.05)
    assert consumer.connected
    user_id, org_id = uuid.uuid4(), uuid.uuid4()
    ev = event("membership.removed", tenant_id=org_id,
               data={"organization_id": str(org_id), "user_id": str(user_id), "role": "agent"})
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(aio_pika.Message(event_json(ev).encode(), content_type="application/json",
                                                message_id=str(ev.id)), routing_key=ev.type)
    finally:
        await connection.close()
    key = f"rv:ut:{user_id}:{org_id}"
    for _ in range(100):
        if await redis.get(key):
            break
        await asyncio.sleep(0.05)
    assert await redis.get(key) is not None


async def test_poison_events_are_dead_lettered_and_the_next_event_applies(consumer_app, settings, redis):
    consumer = consumer_app.server.app[MEMBERSHIP_CONSUMER]
    await wait_connected(consumer)
    user_id, org_id = uuid.uuid4(), uuid.uuid4()
    member = {"organization_id": str(org_id), "user_id": str(user_id), "role": "agent"}
    malformed = [event("membership.removed", tenant_id=org_id, data={**member, "user_id": "nope"}),
                 event("membership.role_changed", tenant_id=org_id, data=member),  # no old_role
                 event("role.deleted", tenant_id=org_id, data={"role_id": str(uuid.uuid4()), "description": "",
                                                                "permissions": []}),  # no name
                 event("organization.deleted", tenant_id=None, data={}, subject_id="not-an-id")]
    good = event("membership.removed", tenant_id=org_id, data=member)
    key = f"rv:ut:{user_id}:{org_id}"

    async def applied() -> bool:
        return await redis.get(key) is not None
    await assert_poison_is_dead_lettered(settings.amqp_url.get_secret_value(), settings.events_exchange,
                                         consumer.group, malformed=malformed, good=good, applied=applied)
