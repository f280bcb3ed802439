"""Events: the envelope, the transactional outbox, the relay that publishes it, and consumers.

    add_event(conn, ...)     in the caller's transaction, next to the state change (outbox)
    relay.OutboxRelay        outbox -> RabbitMQ with publisher confirms (relay_ctx per process)
    consumer.EventConsumer   group queue -> handler(conn, event) in a transaction with the inbox
    poison                   the poison-event policy: MalformedEvent, event_data, organization_of
    dlq                      python -m shared.messaging.dlq list|requeue --group G
"""
from .envelope import Actor, Event, Subject, actor_of
from .outbox import add_event
from .poison import MalformedEvent, event_data, organization_of

__all__ = ["Actor", "Event", "MalformedEvent", "Subject", "actor_of", "add_event", "event_data", "organization_of"]
