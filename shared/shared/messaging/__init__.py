"""Events: the envelope, the transactional outbox, the relay that publishes it, and consumers."""
from .envelope import Actor, Event, Subject
from .outbox import add_event

__all__ = ["Actor", "Event", "Subject", "add_event"]
