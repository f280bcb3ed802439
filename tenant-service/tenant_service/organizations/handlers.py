"""HTTP edge of the organization routes: parse, authorize by token, call the service, answer."""
from __future__ import annotations

from aiohttp import web

from shared.auth import authenticate
from shared.context import request_context
from shared.pagination import PageQuery, page
from shared.permissions import ORGANIZATION_DELETE, ORGANIZATION_MANAGE
from shared.web import json_response, parse_body, parse_query

from ..context import org_principal
from ..keys import ORGANIZATIONS
from .schemas import MyOrganization, Organization, OrganizationCreate, OrganizationUpdate


def _out(org) -> Organization:
    return Organization(id=org.id, name=org.name, slug=org.slug, created_at=org.created_at,
                        member_count=org.member_count)


async def create_organization(request: web.Request) -> web.Response:
    principal = await authenticate(request)  # a token without tid may create one
    body = await parse_body(request, OrganizationCreate)
    org = await request.app[ORGANIZATIONS].create(request_context(request), principal, name=body.name,
                                                  slug=body.slug)
    return json_response(_out(org), status=201)


async def list_my_organizations(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    query = parse_query(request, PageQuery)
    rows, cursor = await request.app[ORGANIZATIONS].list_mine(user_id=principal.user_id, limit=query.limit,
                                                              cursor=query.cursor)
    return json_response(page([MyOrganization(id=r.id, name=r.name, slug=r.slug, role=r.role) for r in rows], cursor))


async def get_organization(request: web.Request) -> web.Response:
    _, org_id = await org_principal(request)
    return json_response(_out(await request.app[ORGANIZATIONS].get(org_id=org_id)))


async def update_organization(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request, ORGANIZATION_MANAGE)
    body = await parse_body(request, OrganizationUpdate)
    org = await request.app[ORGANIZATIONS].update(request_context(request), principal, org_id=org_id,
                                                  name=body.name, slug=body.slug)
    return json_response(_out(org))


async def delete_organization(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request, ORGANIZATION_DELETE)
    await request.app[ORGANIZATIONS].delete(request_context(request), principal, org_id=org_id)
    return web.Response(status=204)
