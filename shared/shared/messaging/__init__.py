"""Events: the envelope, the transactional outbox, the relay that publishes it, and consumers.

    add_event(conn, ...)     in the caller's transaction, next to the state change (outbox)
    relay.OutboxRelay        outbox -> RabbitMQ with publisher confirms (relay_ctx per process)
    consumer.EventConsumer   group queue -> handler(conn, event) in a transaction with the inbox
    dlq                      python -m shared.messaging.dlq list|requeue --group G
"""
from .envelope import Actor, Event, Subject, actor_of
from .outbox import add_event

__all__ = ["Actor", "Event", "Subject", "actor_of", "add_event"]
