"""HTTP edge of the member routes."""
from __future__ import annotations

from aiohttp import web

from shared.context import request_context
from shared.pagination import PageQuery, page
from shared.permissions import MEMBERS_MANAGE, MEMBERS_READ
from shared.web import json_response, parse_body, parse_query

from ..context import org_principal, path_uuid
from ..keys import MEMBERS
from .repository import MemberRecord
from .schemas import Member, MemberRoleUpdate


def member_out(r: MemberRecord) -> Member:
    return Member(user_id=r.user_id, email=r.email, name=r.name, role=r.role, joined_at=r.joined_at)


async def list_members(request: web.Request) -> web.Response:
    _, org_id = await org_principal(request, MEMBERS_READ)
    query = parse_query(request, PageQuery)
    rows, cursor = await request.app[MEMBERS].list(org_id=org_id, limit=query.limit, cursor=query.cursor)
    return json_response(page([member_out(r) for r in rows], cursor))


async def change_member_role(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request, MEMBERS_MANAGE)
    user_id = path_uuid(request, "user_id")
    body = await parse_body(request, MemberRoleUpdate)
    member = await request.app[MEMBERS].change_role(request_context(request), principal,
                                                    org_id=org_id, user_id=user_id, role=body.role)
    return json_response(member_out(member))


async def remove_member(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request)
    user_id = path_uuid(request, "user_id")
    await request.app[MEMBERS].remove(request_context(request), principal, org_id=org_id,
                                      user_id=user_id)
    return web.Response(status=204)
