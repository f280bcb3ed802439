"""Prometheus metrics of the event backbone (one registry per process, as for HTTP; under gunicorn
the workers' values are combined, see shared.service.prepare_metrics_dir)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PENDING = Gauge("outbox_pending_events", "Committed events not yet confirmed by the broker", ["schema"],
                       multiprocess_mode="livemax")
OUTBOX_OLDEST_AGE = Gauge("outbox_oldest_pending_age_seconds",
                          "Age of the oldest event waiting in the outbox (0 when empty)", ["schema"],
                          multiprocess_mode="livemax")
# Under gunicorn every worker runs a relay: 0 when any live worker's relay is disconnected.
RELAY_BROKER_CONNECTED = Gauge("outbox_relay_broker_connected", "1 while the relay holds a broker connection",
                               ["schema"], multiprocess_mode="livemin")
EVENTS_PUBLISHED = Counter("events_published_total", "Events published and confirmed by the broker", ["schema"])
EVENTS_PUBLISH_FAILURES = Counter("events_publish_failures_total",
                                  "Event publications that failed (the event stays pending and is retried)",
                                  ["schema"])
EVENTS_UNROUTABLE = Counter("events_unroutable_total",
                            "Published events that no queue was bound to receive", ["schema"])

EVENTS_PROCESSED = Counter("events_processed_total", "Events applied by a consumer group", ["group"])
EVENTS_DUPLICATES = Counter("events_duplicates_total",
                            "Redelivered events a consumer group had already applied", ["group"])
EVENTS_RETRIED = Counter("events_retried_total", "Failed deliveries scheduled for a delayed retry", ["group"])
EVENTS_DEAD_LETTERED = Counter("events_dead_lettered_total", "Messages parked in the dead-letter queue",
                               ["group", "reason"])
EVENT_HANDLER_SECONDS = Histogram(
    "event_handler_duration_seconds", "Time to apply one event, transaction included", ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
