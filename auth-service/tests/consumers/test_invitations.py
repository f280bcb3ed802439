"""invitation.accepted verifies the address the invitation was sent to; a poison event is
dead-lettered and the next one still applies (over the real broker)."""
import uuid
from datetime import UTC, datetime

from auth_service.app import INVITATION_CONSUMER
from shared.messaging import Event
from shared.messaging.testing import assert_poison_is_dead_lettered, delete_broker_objects, wait_connected


def accepted(data: dict) -> Event:
    return Event(id=uuid.uuid4(), type="invitation.accepted", occurred_at=datetime.now(UTC), source="tenant-service",
                 tenant_id=uuid.uuid4(), actor={"user_id": None, "ip": None},
                 subject={"type": "invitation", "id": str(uuid.uuid4())}, request_id="req-test-inv", data=data)


async def test_poison_events_are_dead_lettered_and_the_next_event_applies(make_settings, settings, start_app,
                                                                          signup, events):
    group = f"auth-test-invitations-{uuid.uuid4().hex[:8]}"
    app_settings = make_settings(tenant_url=settings.tenant_url, invitation_consumer_enabled=True,
                                 invitation_consumer_group=group)
    try:
        consumer = (await start_app(app_settings)).server.app[INVITATION_CONSUMER]
        await wait_connected(consumer)
        account = await signup()
        data = {"email": account.email, "role": "member", "user_id": account.id}

        async def applied() -> bool:
            return bool(await events("auth.email_verified", account.id))
        await assert_poison_is_dead_lettered(
            app_settings.amqp_url.get_secret_value(), app_settings.events_exchange, group,
            malformed=[accepted({**data, "user_id": "nope"}), accepted({"email": account.email, "role": "member"})],
            good=accepted(data), applied=applied)
    finally:
        await delete_broker_objects(app_settings.amqp_url.get_secret_value(), groups=[group])
