"""Settings from the environment, parsed once per process and passed in.

Names shared by every process (REDIS_URL, AMQP_URL, JWT_*, INTERNAL_API_TOKEN, ...) carry
no prefix; what differs per process (port, database URL, worker count) carries the
process's prefix, e.g. ``AUTH_PORT`` or ``TICKET_DATABASE_URL``.
"""
from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def shared_field(name: str, default, **kw):
    """A field read from an unprefixed environment variable shared by all processes."""
    return Field(default, validation_alias=AliasChoices(name), **kw)


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1

    # Database: the service's own login role; migrations use the owner role.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://postgres@127.0.0.1:5432/saas"
    db_schema: str = "public"
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_statement_timeout_ms: int = 5000
    db_command_timeout_s: float = 10.0
    db_connect_attempts: int = 30

    redis_url: str = shared_field("REDIS_URL", "redis://127.0.0.1:6379/0")
    amqp_url: SecretStr = shared_field("AMQP_URL", SecretStr("amqp://guest:guest@127.0.0.1:5672/"))
    events_exchange: str = shared_field("EVENTS_EXCHANGE", "events")

    jwt_issuer: str = shared_field("JWT_ISSUER", "saas-auth")
    jwt_audience: str = shared_field("JWT_AUDIENCE", "saas-api")
    jwks_url: str = shared_field("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json")
    jwt_leeway_s: int = shared_field("JWT_LEEWAY_S", 10)
    # Shared secret the gateway and services present to each other on internal calls.
    internal_api_token: SecretStr = shared_field("INTERNAL_API_TOKEN", SecretStr("dev-internal-token-change-me"))

    log_level: str = shared_field("LOG_LEVEL", "INFO")
    max_body_bytes: int = shared_field("MAX_BODY_BYTES", 1024 * 1024)
    shutdown_timeout_s: float = shared_field("SHUTDOWN_TIMEOUT_S", 20.0)
    ready_timeout_s: float = shared_field("READY_TIMEOUT_S", 0.8)

    # Outbox relay (every service process that writes events runs one).
    relay_enabled: bool = shared_field("RELAY_ENABLED", True)
    relay_batch_size: int = shared_field("RELAY_BATCH_SIZE", 200)
    relay_poll_interval_s: float = shared_field("RELAY_POLL_INTERVAL_S", 1.0)
    outbox_retention_s: int = shared_field("OUTBOX_RETENTION_S", 24 * 3600)

    # Consumers
    consumer_prefetch: int = shared_field("CONSUMER_PREFETCH", 32)
    consumer_max_retries: int = shared_field("CONSUMER_MAX_RETRIES", 5)
    consumer_retry_delay_ms: int = shared_field("CONSUMER_RETRY_DELAY_MS", 1000)
