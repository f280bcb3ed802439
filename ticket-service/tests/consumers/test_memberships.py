"""The membership read model: out-of-order delivery, duplicates, deleted organizations, and
the real consumer over RabbitMQ."""
import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer

from shared.messaging import Event, MalformedEvent, Subject
from shared.messaging.outbox import event_json
from shared.messaging.testing import assert_poison_is_dead_lettered, delete_broker_objects, wait_connected
from ticket_service.app import create_app
from ticket_service.keys import MEMBERSHIP_CONSUMER


async def _row(pool, org_id, user_id):
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org_id))
        return await conn.fetchrow("SELECT role, active FROM membership WHERE user_id = $1", user_id)


async def test_older_events_delivered_late_are_ignored(api, org, pool, membership_consumer):
    user = uuid.uuid4()
    t0 = datetime.now(UTC)
    ev = api.membership_event
    created = ev("membership.created", org.id, user, "agent", occurred_at=t0)
    promoted = ev("membership.role_changed", org.id, user, "admin", occurred_at=t0 + timedelta(seconds=1))
    removed = ev("membership.removed", org.id, user, "admin", occurred_at=t0 + timedelta(seconds=2))
    # Delivered newest first.
    for event in (removed, promoted, created):
        assert await membership_consumer.process(event)
    assert dict(await _row(pool, org.id, user)) == {"role": "admin", "active": False}
    # A duplicate is dropped by the inbox.
    assert not await membership_consumer.process(created)
    # A newer re-add wins.
    assert await membership_consumer.process(ev("membership.created", org.id, user, "agent",
                                                 occurred_at=t0 + timedelta(seconds=3)))
    assert dict(await _row(pool, org.id, user)) == {"role": "agent", "active": True}


async def test_malformed_events_are_poison_and_unrelated_ones_are_ignored(api, org, pool, membership_consumer):
    bad = api.membership_event("membership.created", org.id, uuid.uuid4(), "agent")
    bad = bad.model_copy(update={"data": {"organization_id": "nope"}})
    with pytest.raises(MalformedEvent, match="data.organization_id"):
        await membership_consumer.process(bad)
    custom = api.membership_event("membership.created", org.id, uuid.uuid4(), "Helper")  # no permissions
    with pytest.raises(MalformedEvent, match="data.permissions"):
        await membership_consumer.process(custom)
    other = api.membership_event("membership.something_new", org.id, uuid.uuid4(), "agent")
    assert await membership_consumer.process(other)


def _org_deleted(org_id) -> Event:
    return Event(id=uuid.uuid4(), type="organization.deleted", occurred_at=datetime.now(UTC),
                 source="tenant-service", tenant_id=org_id, actor={},
                 subject={"type": "organization", "id": str(org_id)},
                 request_id="test", data={})


async def test_deleted_organization_tickets_answer_404_everywhere(api, org, other_org, membership_consumer):
    owner, member = await org.user("owner"), await org.user("member")
    bystander = await other_org.user("owner")
    kept = await api.create_ticket(bystander)
    t = await api.create_ticket(member)
    assert await membership_consumer.process(_org_deleted(org.id))
    url = f"/v1/tickets/{t['id']}"
    await api.problem(await api.get(owner, t["id"]), 404)
    await api.problem(await api.get(member, t["id"]), 404)
    assert (await api.list(owner))["items"] == []
    await api.problem(await api.patch(owner, t, {"title": "x"}), 404)
    await api.problem(await api.client.delete(url, headers=owner.auth), 404)
    await api.problem(await api.client.post(f"{url}/restore", headers=owner.auth), 404)
    await api.problem(await api.client.post(f"{url}/comments", json={"body": "x"}, headers=owner.auth), 404)
    await api.problem(await api.client.get(f"{url}/comments", headers=owner.auth), 404)
    await api.problem(await api.client.post("/v1/tickets", json={"title": "x"}, headers=owner.auth), 404)
    # Other organizations are untouched.
    assert (await api.get(bystander, kept["id"])).status == 200


@pytest.fixture
async def rabbit_app(settings):
    """The app with its real consumer on a unique exchange and queue."""
    suffix = uuid.uuid4().hex[:8]
    s = settings.model_copy(update={"consumers_enabled": True, "events_exchange": f"events_test_{suffix}",
                                    "membership_consumer_group": f"ticket-service.memberships.test_{suffix}"})
    async with TestClient(TestServer(create_app(s))) as client:
        yield client, s
    await delete_broker_objects(s.amqp_url.get_secret_value(), exchange=s.events_exchange,
                                groups=[s.membership_consumer_group])


async def test_real_events_through_rabbitmq_feed_the_read_model(rabbit_app, api, org, tokens):
    client, s = rabbit_app
    consumer = client.app[MEMBERSHIP_CONSUMER]
    for _ in range(200):
        if consumer.connected:
            break
        await asyncio.sleep(0.05)
    assert consumer.connected
    agent_id = uuid.uuid4()
    headers = {"Authorization": f"Bearer {tokens.mint(user_id=agent_id, tenant_id=org.id, role='agent')}"}
    t = await (await client.post("/v1/tickets", json={"title": "x"}, headers=headers)).json()
    url = f"/v1/tickets/{t['id']}"
    resp = await client.patch(url, json={"assignee_id": str(agent_id)}, headers={**headers, "If-Match": '"1"'})
    assert resp.status == 422  # not known to the read model yet

    connection = await aio_pika.connect(s.amqp_url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(s.events_exchange)
        event = api.membership_event("membership.created", org.id, agent_id, "agent")
        for _ in range(2):  # delivered twice: applied once
            await exchange.publish(aio_pika.Message(event_json(event).encode(), content_type="application/json",
                                                    message_id=str(event.id)), routing_key=event.type)
    for _ in range(100):
        resp = await client.patch(url, json={"assignee_id": str(agent_id)}, headers={**headers, "If-Match": '"1"'})
        if resp.status == 200:
            break
        await asyncio.sleep(0.05)
    assert resp.status == 200
    for _ in range(40):
        if consumer.processed_total >= 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert consumer.processed_total == 1
    ready = await (await client.get("/health/ready")).json()
    assert ready["checks"]["membership_consumer"]["ok"] is True


async def test_poison_events_are_dead_lettered_and_the_next_event_applies(rabbit_app, api, org, pool):
    client, s = rabbit_app
    consumer = client.app[MEMBERSHIP_CONSUMER]
    await wait_connected(consumer)
    user = uuid.uuid4()
    ev = api.membership_event
    no_ids = ev("membership.created", org.id, user, "agent").model_copy(update={"data": {"role": "agent"}})
    no_org = _org_deleted(org.id).model_copy(update={"tenant_id": None, "subject": Subject(type="organization",
                                                                                   id="nope")})
    good = ev("membership.created", org.id, user, "agent")

    async def applied() -> bool:
        return await _row(pool, org.id, user) is not None
    await assert_poison_is_dead_lettered(s.amqp_url.get_secret_value(), s.events_exchange, s.membership_consumer_group,
                                         malformed=[no_ids, ev("membership.role_changed", org.id, user, "Helper"),
                                                    no_org],
                                         good=good, applied=applied)
