"""user.registered keeps the profiles in step: through a real broker into the real database."""
import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer

from shared.messaging import MalformedEvent
from shared.messaging.broker import connect, declare_events_exchange
from shared.messaging.envelope import Actor, Event, Subject
from shared.messaging.outbox import event_json
from shared.messaging.testing import assert_poison_is_dead_lettered, delete_broker_objects, wait_connected
from shared.testing import AMQP_URL
from tenant_service.app import create_app
from tenant_service.consumers.users import handle_user_event
from tenant_service.keys import USERS_CONSUMER


def registered(user_id, email, name, at=None) -> Event:
    return Event(id=uuid.uuid4(), type="user.registered", occurred_at=at or datetime.now(UTC),
                 source="auth-service", actor=Actor(user_id=user_id), subject=Subject(type="user", id=str(user_id)),
                 data={"user_id": str(user_id), "email": email, "name": name})


async def profile(admin_db, user_id):
    row = await admin_db.fetchrow("SELECT email, name FROM tenant.user_profile WHERE user_id = $1", user_id)
    return None if row is None else tuple(row)


@pytest.fixture
async def users_app(settings):
    """The app with its real user.registered consumer on a unique exchange and queue."""
    exchange, group = f"events_test_{uuid.uuid4().hex[:8]}", f"tenant_users_test_{uuid.uuid4().hex[:8]}"
    app = create_app(settings.model_copy(update={"events_exchange": exchange, "users_consumer_enabled": True,
                                                 "users_consumer_group": group}))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        await wait_connected(app[USERS_CONSUMER])
        yield client, exchange, group
    finally:
        await client.close()
        await delete_broker_objects(AMQP_URL, exchange=exchange, groups=[group])


async def test_consumer_upserts_profile_from_the_broker(users_app, admin_db):
    client, exchange, group = users_app
    user_id = uuid.uuid4()
    connection = await connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        ex = await declare_events_exchange(channel, exchange)
        event = registered(user_id, " New.User@Example.COM ", "New User")
        for _ in range(2):  # a duplicate delivery changes nothing
            await ex.publish(aio_pika.Message(event_json(event).encode(), message_id=str(event.id),
                                              content_type="application/json"), routing_key=event.type)
    for _ in range(100):
        if await profile(admin_db, user_id):
            break
        await asyncio.sleep(0.05)
    assert await profile(admin_db, user_id) == ("new.user@example.com", "New User")
    ready = await (await client.get("/health/ready")).json()
    assert ready["checks"]["users_consumer"]["ok"] is True


async def test_older_event_never_overwrites_newer(app_db, admin_db):
    user_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with app_db.acquire() as conn, conn.transaction():
        await handle_user_event(conn, registered(user_id, "new@example.com", "New", now))
        await handle_user_event(conn, registered(user_id, "old@example.com", "Old", now - timedelta(seconds=5)))
    assert await profile(admin_db, user_id) == ("new@example.com", "New")


async def test_malformed_event_is_poison(app_db):
    bad = registered(uuid.uuid4(), "x@example.com", "X")
    bad.data = {"user_id": "nope"}
    async with app_db.acquire() as conn, conn.transaction():
        with pytest.raises(MalformedEvent, match="data.user_id: uuid_parsing"):
            await handle_user_event(conn, bad)


async def test_poison_events_are_dead_lettered_and_the_next_event_applies(users_app, admin_db):
    _, exchange, group = users_app
    user_id = uuid.uuid4()
    no_email = registered(uuid.uuid4(), "x@example.com", "X")
    no_email.data = {"user_id": str(no_email.actor.user_id), "name": "X"}
    bad_id = registered(uuid.uuid4(), "y@example.com", "Y")
    bad_id.data = {**bad_id.data, "user_id": 42}

    async def applied() -> bool:
        return await profile(admin_db, user_id) == ("good@example.com", "Good")
    await assert_poison_is_dead_lettered(AMQP_URL, exchange, group, malformed=[no_email, bad_id],
                                         good=registered(user_id, "Good@Example.com", "Good"), applied=applied)
