"""event_json: the envelope as JSON text, whichever way it is written (pydantic-core for a UTC
time, model_dump + json.dumps otherwise): the same document, occurred_at in UTC with "Z"."""
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from shared.messaging.envelope import Actor, Event, Subject
from shared.messaging.outbox import event_json

scalars = (st.none() | st.booleans() | st.integers(-2 ** 53, 2 ** 53)
           | st.text(st.characters(blacklist_categories=("Cs",))))
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
offsets = st.sampled_from([timedelta(0), timedelta(hours=2), timedelta(hours=-5, minutes=-30)])


def reference(event: Event) -> dict:
    """The document as the envelope defines it, built the slow way."""
    document = event.model_dump(mode="json")
    document["occurred_at"] = event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return document


@given(moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1)), offset=offsets,
       data=st.dictionaries(st.text(max_size=8), values, max_size=4), ip=st.none() | st.just("203.0.113.9"),
       staff=st.booleans())
def test_event_json_is_the_envelope_with_a_utc_time(moment, offset, data, ip, staff):
    event = Event(id=uuid.uuid4(), type="ticket.created", occurred_at=moment.replace(tzinfo=timezone(offset)),
                  source="test", tenant_id=uuid.uuid4(), actor=Actor(user_id=uuid.uuid4(), ip=ip, staff=staff),
                  subject=Subject(type="ticket", id="1"), request_id="r", data=data)
    text = event_json(event)
    assert json.loads(text) == reference(event)
    assert json.loads(text)["occurred_at"].endswith("Z")
