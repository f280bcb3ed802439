"""The poison-event policy, defined once for every consumer (ours run it through
``shared.messaging.consumer.EventConsumer``).

An event that can never be applied as it stands is dead-lettered at once: its body is not JSON,
it is not an envelope of the contract, or its ``data`` lacks or mistypes what the handler needs.
It goes to the consumer group's ``<group>.dlq`` (a copy the broker confirmed before the original
is acked) and is logged once, at ERROR, as "event dead-lettered" with the event's id and type,
the reason and the failing fields' names, never their values (a payload can hold personal
data). It is neither retried (nothing can fix it but a change of code) nor skipped (an operator
sees it with ``python -m shared.messaging.dlq list --group G``, fixes the producer or the
consumer, and requeues it).

A handler says an event is poison by raising ``MalformedEvent``; ``event_data`` and
``organization_of`` raise it for it. Every other failure is not the event's fault: an
infrastructure failure (``consumer.TRANSIENT_ERRORS``: the database or the network away) is
retried for as long as it lasts, without spending the retry budget; anything else (a bug, a
constraint) is retried with doubling delays ``max_retries`` times, then dead-lettered the same
way (reason ``retries_exhausted``).

An event of a type the handler does not handle is acked and ignored: a wildcard binding also
delivers the types added later.
"""
from __future__ import annotations

import functools
from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from .envelope import Event

D = TypeVar("D", bound=BaseModel)

# Dead-letter reasons (the DLQ message's ``x-dead-letter-reason`` and the metric's label).
UNPARSEABLE = "unparseable"            # not JSON, or not an envelope
MALFORMED = "malformed"                # an envelope whose data the handler cannot use
RETRIES_EXHAUSTED = "retries_exhausted"


class MalformedEvent(Exception):
    """The event can never be applied as it stands: dead-letter it now, do not retry it.
    The message names what is wrong (fields, not their values): it is logged and kept with
    the dead letter."""


def describe_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    """Which fields failed and how (``data.user_id: uuid_parsing``), without the input values."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{prefix}{where}: {err.get('type', 'invalid')}" if where else str(err.get("type", "invalid")))
    return "; ".join(parts)[:500] or "invalid"


@functools.cache
def _lenient(model: type[BaseModel]) -> type[BaseModel]:
    # The catalogue's models refuse undeclared fields (a producer must not drift); a consumer
    # reads them leniently, so a field added later (an additive change, same version) is no poison.
    if model.model_config.get("extra") != "forbid":
        return model
    return type(model.__name__, (model,), {"model_config": ConfigDict(extra="ignore"),
                                           "__module__": model.__module__, "__doc__": model.__doc__})


def event_data(event: Event, model: type[D]) -> D:
    """``event.data`` read as ``model`` (usually the type's model in shared.messaging.catalog);
    MalformedEvent naming the failing fields when it does not fit."""
    try:
        return _lenient(model).model_validate(event.data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise MalformedEvent(f"{event.type}: {describe_validation_error(exc, prefix='data.')}") from None


def organization_of(event: Event) -> UUID:
    """The organization an event concerns: its ``tenant_id``, or for an organization's own
    event (subject type ``organization``) the subject's id; MalformedEvent without either."""
    if event.tenant_id is not None:
        return event.tenant_id
    if event.subject.type == "organization":
        try:
            return UUID(event.subject.id)
        except ValueError:
            pass
    raise MalformedEvent(f"{event.type}: no organization (tenant_id, or an organization subject id)")
