"""Settings from the environment, parsed once per process and passed in.

Names shared by every process (REDIS_URL, AMQP_URL, JWT_*, INTERNAL_API_TOKEN, ...) carry
no prefix; what differs per process (port, database URL, worker count) carries the
process's prefix, e.g. ``AUTH_PORT`` or ``TICKET_DATABASE_URL``. Every field has a
description: the README's environment table is generated from them (deploy/envdoc.py).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def shared_field(name: str, default: Any, description: str = "", **kw: Any) -> Any:
    # Any, like pydantic.Field itself: the value stands in for the field's declared type.
    """A field read from an unprefixed environment variable shared by all processes."""
    return Field(default, validation_alias=AliasChoices(name), description=description, **kw)


# The least length of every secret key in production (HMAC keys, the internal-call token).
MIN_SECRET_BYTES = 32
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    environment: Literal["production", "development"] = shared_field(
        "ENVIRONMENT", "production",
        "`production` (the default) refuses to start while a secret is at its development default, "
        "shorter than 32 bytes or reused for another purpose; `development` (make run, the tests) "
        "only warns.")

    service_name: str = Field("service", description="Name in logs, metrics and event `source`.")
    host: str = Field("127.0.0.1", description="Interface to bind (0.0.0.0 in containers).")
    port: int = Field(8080, description="HTTP port.")
    workers: int = Field(1, description="gunicorn worker processes for `serve`.")

    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/saas",
                              description="PostgreSQL URL of the service's own login role.")
    migrate_database_url: str = Field("postgresql://postgres@127.0.0.1:5432/saas",
                                      description="PostgreSQL URL of the schema owner role (migrations).")
    db_schema: str = Field("public", description="The PostgreSQL schema the service owns.")
    migrations_dir: str = Field("", description=(
        "Directory of the service's migration files; empty: `<service>/migrations` beside the package "
        "(the container image, whose packages are installed, points it at the copied folder)."))
    db_pool_min: int = Field(1, description="Minimum pooled connections per worker.")
    db_pool_max: int = Field(10, description="Maximum pooled connections per worker.")
    db_statement_timeout_ms: int = Field(5000, description="Server-side statement timeout.")
    db_command_timeout_s: float = Field(10.0, description="Client-side timeout of one query.")
    db_connect_attempts: int = Field(30, description="Connection attempts at start-up (exponential backoff).")
    db_transaction_pooling: bool = Field(False, description=(
        "`true` when DATABASE_URL goes through PgBouncer in transaction pooling mode: no server-side "
        "statement cache, no session settings at connect (search_path and timeouts come from the role's "
        "defaults, set by shared.dbsetup)."))

    redis_url: str = shared_field("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL.")
    amqp_url: SecretStr = shared_field("AMQP_URL", SecretStr(DEFAULT_AMQP_URL),
                                       "RabbitMQ URL (secret: carries the password).")
    events_exchange: str = shared_field("EVENTS_EXCHANGE", "events", "Topic exchange events are published to.")

    jwt_issuer: str = shared_field("JWT_ISSUER", "saas-auth", "`iss` of access tokens.")
    jwt_audience: str = shared_field("JWT_AUDIENCE", "saas-api", "`aud` of access tokens.")
    jwks_url: str = shared_field("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json",
                                 "Where the gateway and services fetch the token keys.")
    jwt_leeway_s: int = shared_field("JWT_LEEWAY_S", 10, "Clock leeway for exp/nbf/iat checks.")
    internal_api_token: SecretStr = shared_field(
        "INTERNAL_API_TOKEN", SecretStr("dev-internal-token-change-me"),
        "Secret on internal calls and gateway-set headers (X-Internal-Token); only that purpose. "
        "Production: 32+ random bytes.")

    log_level: str = shared_field("LOG_LEVEL", "INFO", "Log level (JSON logs on stdout).")
    max_body_bytes: int = shared_field("MAX_BODY_BYTES", 1024 * 1024, "Largest accepted request body (413 above).")
    shutdown_timeout_s: float = shared_field(
        "SHUTDOWN_TIMEOUT_S", 20.0, "Drain time for in-flight requests on SIGTERM.")
    gc_gen0_threshold: int = shared_field(
        "GC_GEN0_THRESHOLD", 10_000, "Container allocations between two collections of Python's youngest "
        "garbage-collector generation, in each process (Python's default: 700); start-up objects are frozen "
        "out of collection.", ge=1)
    ready_timeout_s: float = shared_field("READY_TIMEOUT_S", 0.8, "Time limit of each readiness check.")

    relay_enabled: bool = shared_field("RELAY_ENABLED", True, "Run the outbox relay in this process.")
    relay_batch_size: int = shared_field("RELAY_BATCH_SIZE", 200, "Outbox rows claimed per relay batch.")
    relay_poll_interval_s: float = shared_field(
        "RELAY_POLL_INTERVAL_S", 0.25, "How often the relay looks for events no write of its own process woke it "
        "for (a background task's, a command's, a process without a running relay); a write, or a consumer's "
        "committed batch, wakes it at once.")
    relay_linger_ms: float = shared_field(
        "RELAY_LINGER_MS", 40.0, "While events keep coming, start a relay batch at most this often (ms), so "
        "one batch carries several events; an event after a quiet spell goes at once. 0: a batch per wake-up.",
        ge=0)
    relay_lazy_linger_ms: float = shared_field(
        "RELAY_LAZY_LINGER_MS", 300.0, "The same spacing while every write since the last batch added only events "
        "no service acts on soon (sign-ins, which the audit log records): a write of any other event cuts it to "
        "RELAY_LINGER_MS. Never below RELAY_LINGER_MS.", ge=0)
    outbox_retention_s: int = shared_field("OUTBOX_RETENTION_S", 24 * 3600, "How long sent outbox rows are kept.")
    relay_publish_timeout_s: float = shared_field("RELAY_PUBLISH_TIMEOUT_S", 5.0,
                                                  "Wait for one broker confirm before the batch is retried.")

    consumer_prefetch: int = shared_field("CONSUMER_PREFETCH", 32, "Unacked messages per consumer (a consumer "
                                          "that applies deliveries in batches takes at least two batches).")
    consumer_max_retries: int = shared_field("CONSUMER_MAX_RETRIES", 5, "Delayed retries before dead-lettering.")
    consumer_retry_delay_ms: int = shared_field("CONSUMER_RETRY_DELAY_MS", 1000, "Delay before a retry.")
    consumer_retry_max_delay_ms: int = shared_field("CONSUMER_RETRY_MAX_DELAY_MS", 60_000,
                                                    "Cap of the retry delay (it doubles per retry).")
    consumer_batch_linger_ms: float = shared_field(
        "CONSUMER_BATCH_LINGER_MS", 20.0, "For consumers that apply deliveries in batches (the audit log): how "
        "long (ms) the first delivery after a quiet spell waits for the ones right behind it (a relay publishes "
        "its batch as one burst) so they share a transaction. 0: at once.", ge=0)
    inbox_retention_s: int = shared_field("INBOX_RETENTION_S", 30 * 24 * 3600,
                                          "How long consumers remember applied event ids.")

    def _env_name(self, name: str) -> str:
        alias = type(self).model_fields[name].validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return (self.model_config.get("env_prefix") or "") + name.upper()

    def secret_keys(self) -> dict[str, str]:
        """Environment name -> value of every secret key of this process: the SecretStr settings
        shipped with a development default (``dev-...``)."""
        out = {}
        for name, field in type(self).model_fields.items():
            default = field.default
            if isinstance(default, SecretStr) and default.get_secret_value().startswith("dev-"):
                out[self._env_name(name)] = getattr(self, name).get_secret_value()
        return out

    def development_secrets(self) -> list[str]:
        """Secret settings still at their shipped development value (``dev-...``): fine for
        `make run`, never for production."""
        return [env for env, value in self.secret_keys().items() if value.startswith("dev-")]

    def secret_problems(self) -> list[str]:
        """Why this configuration must not run in production, one line per setting: a secret key
        at its development default, shorter than MIN_SECRET_BYTES or shared with another
        purpose, or the RabbitMQ URL with its built-in guest credentials."""
        problems = []
        seen: dict[str, str] = {}
        for env, value in self.secret_keys().items():
            if value.startswith("dev-"):
                problems.append(f"{env} has its development default; set a random value of at least "
                                f"{MIN_SECRET_BYTES} bytes")
            elif len(value.encode()) < MIN_SECRET_BYTES:
                problems.append(f"{env} is shorter than {MIN_SECRET_BYTES} bytes")
            elif value in seen:
                problems.append(f"{env} has the same value as {seen[value]}; use a separate secret per purpose")
            seen.setdefault(value, env)
        if self.amqp_url.get_secret_value() == DEFAULT_AMQP_URL:
            problems.append("AMQP_URL has its development default (guest credentials on 127.0.0.1)")
        return problems
