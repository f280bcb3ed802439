"""The gateway's own public routes, merged with the services' declarations into /openapi.json."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.openapi import Operation


class LiveStatus(BaseModel):
    status: str


class ReadyStatus(BaseModel):
    status: str
    checks: dict[str, dict[str, Any]]
    failing: list[str] | None = None


class JsonWebKey(BaseModel):
    kty: str
    kid: str
    alg: str | None = None
    use: str | None = None
    crv: str | None = None
    x: str | None = None
    y: str | None = None


class JsonWebKeySet(BaseModel):
    keys: list[JsonWebKey]


OPERATIONS: list[Operation] = [
    Operation("GET", "/health/live", "Liveness of the gateway process", "operations", response=LiveStatus,
              public=True),
    Operation("GET", "/health/ready", "Readiness: Redis and at least one ready replica of every upstream pool",
              "operations", response=ReadyStatus, public=True, errors=(503,),
              description="503 with the same body shape names the failing checks in `failing`."),
    Operation("GET", "/.well-known/jwks.json", "Public keys that verify access tokens", "auth",
              response=JsonWebKeySet, public=True,
              description="During a key rotation both keys are listed. Served by auth-service."),
    Operation("GET", "/openapi.json", "This document (OpenAPI 3.1)", "operations", public=True),
    Operation("GET", "/asyncapi.json", "The events exchange (AsyncAPI 3.0)", "operations", public=True,
              description="One channel per routing key of the topic exchange `events`, one message per event "
                          "type: the envelope and a JSON Schema of its `data`."),
]
