"""The events catalogue: one data model per event type of the contract, and add_event holding
every producer to it."""
import uuid

import pytest

from shared.messaging import add_event
from shared.messaging.catalog import CATALOG, FORBIDDEN_IN_DATA, UnknownEventType, check_data, event_type
from shared.messaging.outbox import FORBIDDEN_DATA_KEYS


async def test_add_event_refuses_data_that_drifts_from_the_catalogue(messaging_pool):
    async with messaging_pool.acquire() as conn, conn.transaction():
        tenant = uuid.uuid4()
        good = await add_event(conn, source="test", type="membership.role_changed", subject_type="membership",
                               subject_id=f"{tenant}:x", tenant_id=tenant,
                               data={"organization_id": str(tenant), "user_id": str(uuid.uuid4()),
                                     "old_role": "agent", "role": "admin"})
        assert good.data["role"] == "admin"
        for data in ({"organization_id": str(tenant), "user_id": str(uuid.uuid4()), "role": "admin"},  # missing
                     {"organization_id": "nope", "user_id": str(uuid.uuid4()), "old_role": "a", "role": "b"},
                     {"organization_id": str(tenant), "user_id": str(uuid.uuid4()), "old_role": "a", "role": "b",
                      "note": "not in the document"}):
            with pytest.raises(ValueError, match="membership.role_changed"):
                await add_event(conn, source="test", type="membership.role_changed", subject_type="membership",
                                subject_id="x", tenant_id=tenant, data=data)


def test_every_data_model_refuses_unknown_fields_and_secrets():
    for name, spec in CATALOG.items():
        assert spec.data.model_config.get("extra") == "forbid", name
        fields = set(spec.data.model_fields)
        assert not fields & FORBIDDEN_DATA_KEYS, (name, fields & FORBIDDEN_DATA_KEYS)
        assert not fields & FORBIDDEN_IN_DATA, name
    with pytest.raises(UnknownEventType):
        event_type("ticket.exploded")
    with pytest.raises(ValueError):
        check_data("ticket.commented", {"comment_id": str(uuid.uuid4()), "internal": "maybe",
                                        "author_id": str(uuid.uuid4())})
