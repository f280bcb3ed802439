"""Calls to tenant-service's internal routes (shared/README.md, "Internal routes").

Every failure to get an answer — connection refused, timeout, a 5xx, a refused internal
token — is a 503 for our caller: fast, and never a 500.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import aiohttp
from aiohttp import web

from shared.auth import INTERNAL_TOKEN_HEADER
from shared.errors import FieldError, ServiceUnavailable, ValidationFailed
from shared.web import REQUEST_ID_HEADER

log = logging.getLogger(__name__)


class TenantUnavailable(ServiceUnavailable):
    def __init__(self, detail: str = "The organization service is unavailable; try again shortly."):
        super().__init__(detail)


@dataclass(frozen=True)
class Membership:
    organization_id: UUID
    role: str
    joined_at: datetime | None
    # What the role grants now (tenant-service resolves built-in and custom roles); goes into
    # the access token as ``perms``. None from a tenant-service that does not send it yet.
    permissions: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Organization:
    id: UUID
    name: str
    slug: str
    created_at: datetime


class TenantClient:
    def __init__(self, session: aiohttp.ClientSession, *, base_url: str, internal_token: str, timeout_s: float):
        self.session, self.base_url = session, base_url.rstrip("/")
        self.internal_token, self.timeout = internal_token, aiohttp.ClientTimeout(total=timeout_s)

    async def _call(self, method: str, path: str, *, request_id: str | None, **kw: Any) -> tuple[int, object]:
        headers = {INTERNAL_TOKEN_HEADER: self.internal_token}
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        try:
            async with self.session.request(method, self.base_url + path, headers=headers,
                                            timeout=self.timeout, **kw) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("tenant-service unreachable", extra={"path": path, "error": type(exc).__name__})
            raise TenantUnavailable() from None
        if status >= 500 or status in (401, 403):
            log.warning("tenant-service refused", extra={"path": path, "status": status})
            raise TenantUnavailable()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise TenantUnavailable() from None
        return status, body

    async def memberships(self, user_id: UUID, *, request_id: str | None = None) -> list[Membership]:
        status, body = await self._call("GET", f"/internal/users/{user_id}/memberships", request_id=request_id)
        if status == 404:
            return []
        if status != 200 or not isinstance(body, dict):
            raise TenantUnavailable()
        try:
            return [membership_of(i) for i in body.get("items", [])]
        except (KeyError, ValueError, TypeError, AttributeError):
            raise TenantUnavailable() from None

    async def create_organization(self, *, name: str, owner_user_id: UUID, owner_email: str, owner_name: str,
                                  request_id: str | None = None) -> Organization:
        status, body = await self._call(
            "POST", "/internal/organizations", request_id=request_id,
            json={"name": name, "owner_user_id": str(owner_user_id), "owner_email": owner_email,
                  "owner_name": owner_name})
        if status == 422:
            message: object = "is not acceptable"
            if isinstance(body, dict):
                errs = body.get("errors") or []
                message = next((e.get("message") for e in errs if isinstance(e, dict) and e.get("message")),
                               body.get("detail") or message)
            raise ValidationFailed("The request has invalid fields.",
                                   errors=[FieldError("organization_name", str(message))])
        if status not in (200, 201) or not isinstance(body, dict):
            log.warning("unexpected answer creating an organization", extra={"status": status})
            raise TenantUnavailable()
        try:
            return Organization(UUID(body["id"]), body["name"], body["slug"],
                                datetime.fromisoformat(body["created_at"].replace("Z", "+00:00")))
        except (KeyError, ValueError, TypeError, AttributeError):
            raise TenantUnavailable() from None

    async def delete_organization(self, organization_id: UUID, *, owner_user_id: UUID,
                                  request_id: str | None = None) -> None:
        await self._call("DELETE", f"/internal/organizations/{organization_id}",
                         params={"owner_user_id": str(owner_user_id)}, request_id=request_id)

    # ---------------------------------------------------------------- platform staff (admin/)

    async def list_organizations(self, *, q: str | None, limit: int, cursor: str | None,
                                 request_id: str | None = None) -> dict[str, Any]:
        """Every organization (live and deleted), as tenant-service answers it: the list body
        ``{items: [{id, name, slug, created_at, deleted_at, member_count}], next_cursor}``."""
        params = {"limit": str(limit)}
        if q:
            params["q"] = q
        if cursor:
            params["cursor"] = cursor
        status, body = await self._call("GET", "/internal/organizations", params=params, request_id=request_id)
        if status == 422 and isinstance(body, dict):
            errors = [FieldError(str(e.get("field", "cursor")), str(e.get("message", "is not valid")))
                      for e in body.get("errors") or [] if isinstance(e, dict)]
            raise ValidationFailed("The query has invalid parameters.", errors=errors)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise TenantUnavailable()
        return {"items": body["items"], "next_cursor": body.get("next_cursor")}

    async def organization(self, organization_id: UUID, *, request_id: str | None = None) -> dict[str, Any] | None:
        """``{id, name, slug, created_at, deleted_at, member_count}``, or None when there is none."""
        status, body = await self._call("GET", f"/internal/organizations/{organization_id}", request_id=request_id)
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise TenantUnavailable()
        return body


def membership_of(item: dict[str, Any]) -> Membership:
    """A membership as tenant-service's memberships answer writes it (also how a kept answer is
    stored, tenants/cache.py)."""
    return Membership(UUID(item["organization_id"]), item["role"], _joined_at(item.get("joined_at")),
                      _permissions(item.get("permissions")))


def _joined_at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _permissions(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError("permissions must be a list of names")
    return tuple(value)


TENANT_CLIENT = web.AppKey("tenant_client", TenantClient)
