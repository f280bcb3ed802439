"""HTTP edge of the role routes and of the permission catalogue."""
from __future__ import annotations

from aiohttp import web

from shared.auth import authenticate
from shared.context import request_context
from shared.pagination import PageQuery, page
from shared.permissions import ROLES_MANAGE
from shared.web import json_response, parse_body, parse_query

from ..context import org_principal, path_uuid
from ..keys import ROLES
from .schemas import PermissionList, PermissionOut, RoleCreate, RoleDefinitionOut, RoleUpdate
from .service import Role, RoleService


def role_out(r: Role) -> RoleDefinitionOut:
    return RoleDefinitionOut(id=r.id, name=r.name, description=r.description, permissions=r.permissions,
                             builtin=r.builtin)


async def list_permissions(request: web.Request) -> web.Response:
    await authenticate(request)
    return json_response(PermissionList(items=[PermissionOut(name=n, description=d)
                                               for n, d in RoleService.catalogue()]))


async def list_roles(request: web.Request) -> web.Response:
    _, org_id = await org_principal(request)
    query = parse_query(request, PageQuery)
    rows, cursor = await request.app[ROLES].list(org_id=org_id, limit=query.limit, cursor=query.cursor)
    return json_response(page([role_out(r) for r in rows], cursor))


async def create_role(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request, ROLES_MANAGE)
    body = await parse_body(request, RoleCreate)
    role = await request.app[ROLES].create(request_context(request), principal, org_id=org_id,
                                           name=body.name, description=body.description,
                                           permissions=body.permissions)
    return json_response(role_out(role), status=201)


async def update_role(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request, ROLES_MANAGE)
    role_id = path_uuid(request, "role_id")
    body = await parse_body(request, RoleUpdate)
    role = await request.app[ROLES].update(request_context(request), principal, org_id=org_id,
                                           role_id=role_id, name=body.name, description=body.description,
                                           permissions=body.permissions)
    return json_response(role_out(role))


async def delete_role(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request, ROLES_MANAGE)
    role_id = path_uuid(request, "role_id")
    await request.app[ROLES].delete(request_context(request), principal, org_id=org_id, role_id=role_id)
    return web.Response(status=204)
