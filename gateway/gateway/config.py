"""Gateway settings: ``GATEWAY_*`` variables, plus the shared unprefixed ones (``REDIS_URL``,
``JWKS_URL``, ``JWT_*``, ``INTERNAL_API_TOKEN``, ``MAX_BODY_BYTES``)."""
from __future__ import annotations

from typing import Literal

from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    service_name: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8080

    # Upstream pools: comma-separated base URLs; a host name that resolves to several addresses
    # (compose --scale) becomes one replica per address, re-resolved every resolve_interval_s.
    auth_upstreams: str = "http://127.0.0.1:8081"
    tenant_upstreams: str = "http://127.0.0.1:8082"
    ticket_upstreams: str = "http://127.0.0.1:8083"
    resolve_interval_s: float = 5.0
    connect_timeout_s: float = 1.0
    total_timeout_s: float = 10.0
    # A replica that refuses connections sits out this long before it is tried again.
    upstream_eject_s: float = 5.0
    # Kept below the services' keep-alive (75 s) so the gateway never reuses a connection the
    # upstream is about to close.
    upstream_keepalive_s: float = 30.0
    # Upstream answers with a Content-Length up to this size are read whole and sent with one
    # write; larger or chunked ones are streamed.
    buffer_response_max_bytes: int = 65536

    # Addresses (CIDRs) of proxies in front of the gateway whose X-Forwarded-For is believed.
    trusted_proxies: str = ""

    # Rate limits (fixed window in Redis, shared by every gateway replica).
    rate_limit_window_s: int = 60
    rate_limit_public: int = 60       # per client address, on routes without a token
    rate_limit_user: int = 600        # per user, on authenticated routes
    redis_timeout_s: float = 0.25
    # After a Redis failure the gateway stops asking Redis for this long (no per-request waits).
    redis_retry_s: float = 1.0
    # Writes while Redis (revocation) is unavailable: "closed" answers 503, "open" lets them pass.
    redis_down_writes: Literal["closed", "open"] = "closed"

    token_cache_size: int = 10000
    jwks_min_refetch_s: float = 5.0

    cors_origins: str = ""            # comma list of allowed origins; "*" allows any
    cors_max_age_s: int = 600
    hsts: str = "max-age=63072000; includeSubDomains"  # empty: no Strict-Transport-Security

    api_spec_modules: str = "auth_service.api_spec,tenant_service.api_spec,ticket_service.api_spec"
