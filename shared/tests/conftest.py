"""Fixtures for the event backbone tests: a throwaway outbox/inbox schema per test, a pool
connected to it, a unique exchange per session, and clean-up of every queue a test made."""
import uuid

import pytest

from shared.config import BaseServiceSettings
from shared.db import create_pool
from shared.messaging.testing import delete_broker_objects, scratch_schema
from shared.testing import AMQP_URL, admin_dsn


@pytest.fixture(scope="session")
def events_exchange():
    return f"events_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", autouse=True)
async def _drop_events_exchange(events_exchange):
    yield
    await delete_broker_objects(AMQP_URL, exchange=events_exchange)


@pytest.fixture
async def outbox_schema():
    async with scratch_schema() as schema:
        yield schema


@pytest.fixture
def messaging_settings(outbox_schema, events_exchange):
    return BaseServiceSettings(database_url=admin_dsn(), db_schema=outbox_schema, events_exchange=events_exchange,
                               relay_poll_interval_s=0.2, db_connect_attempts=3, db_pool_max=10,
                               amqp_url=AMQP_URL)


@pytest.fixture
async def messaging_pool(messaging_settings):
    pool = await create_pool(messaging_settings)
    async with pool.acquire() as conn:
        # What a consumer's handler does in these tests: one row per application, no unique key,
        # so a second application of an event would show as a second row.
        await conn.execute(
            "CREATE TABLE effect (event_id uuid NOT NULL, applied_at timestamptz DEFAULT clock_timestamp())")
    yield pool
    await pool.close()


@pytest.fixture
async def broker_cleanup():
    """Lists a test fills with the consumer groups and queues it declared; deleted afterwards."""
    groups: list[str] = []
    queues: list[str] = []
    yield groups, queues
    await delete_broker_objects(AMQP_URL, groups=groups, queues=queues)
