"""The audit consumer process: the shared service skeleton without a relay, plus one consumer
and the periodic retention pass.

Its HTTP port serves only ``/health/*`` and ``/metrics``; readiness needs PostgreSQL and a
live broker connection of the consumer.
"""
import asyncio
import logging

from aiohttp import web

from shared.app import create_service_app
from shared.db import DB_POOL
from shared.messaging.consumer import EventConsumer, consumer_ctx, consumer_ready_check
from shared.service import gunicorn_factory
from shared.tasks import cancel_and_wait
from shared.web import add_ready_check

from .config import AuditSettings
from .service import AUDIT_BINDINGS, apply_retention_everywhere, record_event, record_events

AUDIT_CONSUMER = web.AppKey("audit_consumer", EventConsumer)

log = logging.getLogger("tenant_service.audit")


def retention_ctx(settings: AuditSettings):
    """Applies retention every ``retention_interval_s`` (replicas may overlap: each purge runs
    under the organization's chain-head lock and re-checks the stored hash)."""
    async def ctx(app: web.Application):
        async def loop() -> None:
            while True:
                await asyncio.sleep(settings.retention_interval_s)
                try:
                    await apply_retention_everywhere(app[DB_POOL], default_days=settings.retention_days)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("audit retention pass failed")
        task = asyncio.create_task(loop())
        yield
        await cancel_and_wait(task)
    return ctx


def create_app(settings: AuditSettings) -> web.Application:
    app = create_service_app(settings, use_relay=False)
    app.cleanup_ctx.append(consumer_ctx(settings, group=settings.consumer_group, bindings=AUDIT_BINDINGS,
                                        handler=record_event, key=AUDIT_CONSUMER,
                                        max_batch=settings.consumer_batch_max, batch_handler=record_events))
    app.cleanup_ctx.append(retention_ctx(settings))
    add_ready_check(app, "rabbitmq", consumer_ready_check(AUDIT_CONSUMER))
    return app


gunicorn_app = gunicorn_factory(AuditSettings, create_app)
