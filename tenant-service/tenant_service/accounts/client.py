"""Calls to auth-service's internal routes (shared/README.md, "Internal routes"): the profile of
an account whose ``user.registered`` has not reached this service yet.

Every failure to get an answer (refused, timeout, a 5xx, a refused internal token, a malformed
body) is a 503 for our caller: fast, and never a 500 nor a wrong answer."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import aiohttp
from aiohttp import web

from shared.auth import INTERNAL_TOKEN_HEADER
from shared.errors import ServiceUnavailable
from shared.web import REQUEST_ID_HEADER, canonical_email

log = logging.getLogger(__name__)


class AccountsUnavailable(ServiceUnavailable):
    def __init__(self, detail: str = "The account service is unavailable; try again shortly."):
        super().__init__(detail)


@dataclass(frozen=True)
class Account:
    id: UUID
    email: str
    name: str
    created_at: datetime


class AccountsClient:
    def __init__(self, session: aiohttp.ClientSession, *, base_url: str, internal_token: str, timeout_s: float):
        self.session, self.base_url = session, base_url.rstrip("/")
        self.internal_token, self.timeout = internal_token, aiohttp.ClientTimeout(total=timeout_s)

    async def get(self, user_id: UUID, *, request_id: str | None = None) -> Account | None:
        """The account, or None when auth-service says it does not exist (404)."""
        headers = {INTERNAL_TOKEN_HEADER: self.internal_token}
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        path = f"/internal/users/{user_id}"
        try:
            async with self.session.get(self.base_url + path, headers=headers, timeout=self.timeout) as resp:
                status, raw = resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("auth-service unreachable", extra={"path": "/internal/users/{user_id}",
                                                          "error": type(exc).__name__})
            raise AccountsUnavailable() from None
        if status == 404:
            return None
        if status != 200:
            log.warning("auth-service refused", extra={"path": "/internal/users/{user_id}", "status": status})
            raise AccountsUnavailable()
        try:
            body = json.loads(raw)
            email = body["email"]
            if not isinstance(email, str):
                raise TypeError("email")
            account = Account(UUID(body["id"]), canonical_email(email), body["name"],
                              datetime.fromisoformat(body["created_at"].replace("Z", "+00:00")))
        except (KeyError, ValueError, TypeError, AttributeError):
            raise AccountsUnavailable() from None
        if account.id != user_id or not isinstance(account.email, str) or not isinstance(account.name, str):
            raise AccountsUnavailable()
        return account


ACCOUNTS = web.AppKey("accounts", AccountsClient)


def accounts_ctx(settings):
    """An HTTP client session to auth-service for the app's lifetime."""
    async def ctx(app: web.Application):
        async with aiohttp.ClientSession() as session:
            app[ACCOUNTS] = AccountsClient(session, base_url=settings.auth_url,
                                           internal_token=settings.internal_api_token.get_secret_value(),
                                           timeout_s=settings.auth_timeout_s)
            yield
    return ctx
