"""Service-to-service routes (shared/README.md, "Internal routes"). The gateway never routes
``/internal/``; each call must carry the shared X-Internal-Token."""
from __future__ import annotations

from uuid import UUID

from aiohttp import web
from pydantic import BaseModel

from shared.admin import AdminOrganizationOut, AdminOrganizationQuery
from shared.context import request_context
from shared.web import json_response, parse_body, parse_query

from ..context import path_uuid, require_internal
from ..keys import ORGANIZATIONS
from ..organizations.schemas import (
    InternalMembership,
    InternalMemberships,
    InternalOrganization,
    InternalOrganizationCreate,
)


class OwnerQuery(BaseModel):
    owner_user_id: UUID


async def user_memberships(request: web.Request) -> web.Response:
    require_internal(request)
    user_id = path_uuid(request, "user_id")
    rows = await request.app[ORGANIZATIONS].memberships_of(user_id=user_id)
    return json_response(InternalMemberships(items=[
        InternalMembership(organization_id=r.organization_id, role=r.role, permissions=sorted(r.permissions),
                           joined_at=r.joined_at) for r in rows]))


async def create_signup_organization(request: web.Request) -> web.Response:
    require_internal(request)
    body = await parse_body(request, InternalOrganizationCreate)
    org = await request.app[ORGANIZATIONS].create_for_signup(
        request_context(request), owner_id=body.owner_user_id, owner_email=body.owner_email,
        owner_name=body.owner_name, name=body.name)
    # A repeat answers exactly like the first call, so a retried signup cannot tell them apart.
    return json_response(InternalOrganization(id=org.id, name=org.name, slug=org.slug, created_at=org.created_at),
                         status=201)


async def delete_signup_organization(request: web.Request) -> web.Response:
    require_internal(request)
    org_id = path_uuid(request, "org_id")
    query = parse_query(request, OwnerQuery)
    await request.app[ORGANIZATIONS].delete_signup(request_context(request), org_id=org_id,
                                                   owner_id=query.owner_user_id)
    return web.Response(status=204)


def _admin_org(r) -> dict:
    return AdminOrganizationOut(id=r.id, name=r.name, slug=r.slug, created_at=r.created_at, deleted_at=r.deleted_at,
                                member_count=r.member_count).model_dump(mode="json")


async def list_organizations(request: web.Request) -> web.Response:
    """Every organization, for platform staff (auth-service checks the caller is staff)."""
    require_internal(request)
    query = parse_query(request, AdminOrganizationQuery)
    rows, next_cursor = await request.app[ORGANIZATIONS].list_all(q=query.q, limit=query.limit, cursor=query.cursor)
    return json_response({"items": [_admin_org(r) for r in rows], "next_cursor": next_cursor})


async def get_organization(request: web.Request) -> web.Response:
    require_internal(request)
    org = await request.app[ORGANIZATIONS].get_any(org_id=path_uuid(request, "org_id"))
    return json_response(_admin_org(org))
