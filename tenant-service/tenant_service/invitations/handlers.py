"""HTTP edge of the invitation routes."""
from __future__ import annotations

from aiohttp import web

from shared.auth import authenticate
from shared.context import request_context
from shared.pagination import PageQuery, page
from shared.permissions import MEMBERS_INVITE
from shared.web import json_response, parse_body, parse_query

from ..context import org_principal, path_uuid
from ..keys import INVITATIONS
from ..members.schemas import Membership
from .schemas import Invitation, InvitationAccept, InvitationCreate, InvitationCreated


async def create_invitation(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request, MEMBERS_INVITE)
    body = await parse_body(request, InvitationCreate)
    inv, token = await request.app[INVITATIONS].create(request_context(request), principal,
                                                       org_id=org_id, email=body.email, role=body.role)
    return json_response(InvitationCreated(id=inv.id, email=inv.email, role=inv.role, token=token,
                                           expires_at=inv.expires_at), status=201)


async def list_invitations(request: web.Request) -> web.Response:
    _, org_id = await org_principal(request, MEMBERS_INVITE)
    query = parse_query(request, PageQuery)
    rows, cursor = await request.app[INVITATIONS].list_pending(org_id=org_id, limit=query.limit, cursor=query.cursor)
    return json_response(page([Invitation(id=r.id, email=r.email, role=r.role, invited_by=r.invited_by,
                                          created_at=r.created_at, expires_at=r.expires_at) for r in rows], cursor))


async def revoke_invitation(request: web.Request) -> web.Response:
    principal, org_id = await org_principal(request, MEMBERS_INVITE)
    invitation_id = path_uuid(request, "invitation_id")
    await request.app[INVITATIONS].revoke(request_context(request), principal, org_id=org_id,
                                          invitation_id=invitation_id)
    return web.Response(status=204)


async def accept_invitation(request: web.Request) -> web.Response:
    principal = await authenticate(request)  # any signed-in user; the token need not be scoped
    body = await parse_body(request, InvitationAccept)
    m = await request.app[INVITATIONS].accept(request_context(request), principal, token=body.token)
    return json_response(Membership(organization_id=m.organization_id, user_id=m.user_id, role=m.role,
                                    joined_at=m.joined_at))
