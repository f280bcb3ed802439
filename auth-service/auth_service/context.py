"""What a service call needs to know about the request that caused it."""
from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from shared.auth import client_ip
from shared.web import SETTINGS, request_id_of

USER_AGENT_MAX = 512


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    ip: str | None
    user_agent: str | None


def request_info(request: web.Request) -> RequestInfo:
    ua = request.headers.get("User-Agent")
    return RequestInfo(request_id=request_id_of(request), ip=client_ip(request, request.app[SETTINGS]),
                       user_agent=ua[:USER_AGENT_MAX] if ua else None)
