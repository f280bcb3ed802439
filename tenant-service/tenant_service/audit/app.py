"""The audit consumer process: the shared service skeleton without a relay, plus one consumer.

Its HTTP port serves only ``/health/*`` and ``/metrics``; readiness needs PostgreSQL and a
live broker connection of the consumer.
"""
from aiohttp import web

from shared.app import create_service_app
from shared.messaging.consumer import EventConsumer, consumer_ctx, consumer_ready_check
from shared.service import gunicorn_factory
from shared.web import add_ready_check

from .config import AuditSettings
from .service import AUDIT_BINDINGS, record_event

AUDIT_CONSUMER = web.AppKey("audit_consumer", EventConsumer)


def create_app(settings: AuditSettings) -> web.Application:
    app = create_service_app(settings, use_relay=False)
    app.cleanup_ctx.append(consumer_ctx(settings, group=settings.consumer_group, bindings=AUDIT_BINDINGS,
                                        handler=record_event, key=AUDIT_CONSUMER,
                                        max_batch=settings.consumer_batch_max))
    add_ready_check(app, "rabbitmq", consumer_ready_check(AUDIT_CONSUMER))
    return app


gunicorn_app = gunicorn_factory(AuditSettings, create_app)
