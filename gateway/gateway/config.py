"""Gateway settings: ``GATEWAY_*`` variables, plus the shared unprefixed ones (``REDIS_URL``,
``JWKS_URL``, ``JWT_*``, ``INTERNAL_API_TOKEN``, ``MAX_BODY_BYTES``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    service_name: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8080

    auth_upstreams: str = Field("http://127.0.0.1:8081", description=(
        "Base URLs of the auth-service replicas, comma-separated; a host name resolving to several "
        "addresses (compose --scale) gives one replica per address."))
    tenant_upstreams: str = Field("http://127.0.0.1:8082", description="Base URLs of the tenant-service replicas.")
    ticket_upstreams: str = Field("http://127.0.0.1:8083", description="Base URLs of the ticket-service replicas.")
    resolve_interval_s: float = Field(5.0, description="How often upstream host names are resolved again.")
    connect_timeout_s: float = Field(1.0, description="TCP connect timeout to an upstream replica.")
    total_timeout_s: float = Field(10.0, description="Whole upstream exchange timeout (504 when exceeded).")
    upstream_eject_s: float = Field(5.0, description="How long a replica that refused a connection sits out.")
    upstream_keepalive_s: float = Field(30.0, description=(
        "Idle keep-alive of upstream connections (below the services' 75 s, so the gateway never reuses "
        "a connection the upstream is closing)."))
    buffer_response_max_bytes: int = Field(65536, description=(
        "Upstream answers with a Content-Length up to this size are relayed in one write; larger or "
        "chunked ones are streamed."))

    trusted_proxies: str = Field("", description=(
        "CIDRs of proxies in front of the gateway whose X-Forwarded-For is believed (comma-separated); "
        "empty: the peer address is the client."))

    rate_limit_window_s: int = Field(60, description="Rate-limit window (fixed, in Redis, shared by replicas).")
    rate_limit_public: int = Field(60, description=(
        "Requests per window per client address on routes without a token (signup, login, refresh, "
        "JWKS); 0 disables."))
    rate_limit_user: int = Field(600, description="Requests per window per user on authenticated routes; 0 disables.")
    rate_limit_api_key: int = Field(600, description="Requests per window per API key; 0 disables.")
    api_key_resolve_timeout_s: float = Field(2.0, description=(
        "Timeout of asking auth-service about an API key not in the gateway's cache (503 when exceeded)."))
    api_key_usage_flush_s: float = Field(60.0, description=(
        "How often the keys used are reported to auth-service (their `last_used_at`), off the request path."))
    rate_limit_bad_tokens: int = Field(30, description=(
        "Requests with an access token that fails verification (forged, unknown kid, expired, malformed) "
        "per window per client address before 429; 0 disables."))
    redis_timeout_s: float = Field(0.25, description="Connect and reply timeout of the gateway's Redis calls.")
    redis_retry_s: float = Field(1.0, description="After a Redis failure, how long requests are decided without it.")
    redis_down_writes: Literal["closed", "open"] = Field("closed", description=(
        "Authenticated writes while Redis is unavailable: `closed` answers 503 (revocation cannot be "
        "checked), `open` lets them through like reads."))

    token_cache_size: int = Field(10000, description="Verified access tokens kept (until they expire).")
    jwks_min_refetch_s: float = Field(5.0, description="Minimum interval between JWKS refetches for unknown kids.")

    cors_origins: str = Field("", description=(
        "Origins allowed cross-origin (comma-separated, exact `scheme://host[:port]`; `*` any); empty: no CORS."))
    cors_max_age_s: int = Field(600, description="Access-Control-Max-Age of preflight answers.")
    hsts: str = Field("max-age=63072000; includeSubDomains", description=(
        "Strict-Transport-Security value on every answer; empty: not sent."))

    api_spec_modules: str = Field("auth_service.api_spec,tenant_service.api_spec,ticket_service.api_spec",
                                  description="Modules whose OPERATIONS make up /openapi.json.")
