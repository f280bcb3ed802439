"""Every route of tenant-service (public ones are also declared in api_spec.OPERATIONS)."""
from __future__ import annotations

from aiohttp import web

from .audit_events import handlers as audit_events
from .internal import handlers as internal
from .invitations import handlers as invitations
from .members import handlers as members
from .organizations import handlers as organizations
from .roles import handlers as roles

ORG = "/v1/organizations/{org_id}"


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/organizations", organizations.create_organization)
    r.add_get("/v1/organizations", organizations.list_my_organizations)
    r.add_get(ORG, organizations.get_organization)
    r.add_patch(ORG, organizations.update_organization)
    r.add_delete(ORG, organizations.delete_organization)

    r.add_get(f"{ORG}/members", members.list_members)
    r.add_patch(f"{ORG}/members/{{user_id}}", members.change_member_role)
    r.add_delete(f"{ORG}/members/{{user_id}}", members.remove_member)

    r.add_post(f"{ORG}/invitations", invitations.create_invitation)
    r.add_get(f"{ORG}/invitations", invitations.list_invitations)
    r.add_delete(f"{ORG}/invitations/{{invitation_id}}", invitations.revoke_invitation)
    r.add_post("/v1/invitations/accept", invitations.accept_invitation)

    r.add_get("/v1/permissions", roles.list_permissions)
    r.add_get(f"{ORG}/roles", roles.list_roles)
    r.add_post(f"{ORG}/roles", roles.create_role)
    r.add_patch(f"{ORG}/roles/{{role_id}}", roles.update_role)
    r.add_delete(f"{ORG}/roles/{{role_id}}", roles.delete_role)

    r.add_get(f"{ORG}/audit-events", audit_events.list_audit_events)
    r.add_get(f"{ORG}/audit-events/export", audit_events.export_audit_events)
    r.add_get(f"{ORG}/audit-events/verify", audit_events.verify_audit_events)

    r.add_get("/internal/users/{user_id}/memberships", internal.user_memberships)
    r.add_post("/internal/organizations", internal.create_signup_organization)
    r.add_delete("/internal/organizations/{org_id}", internal.delete_signup_organization)
    r.add_get("/internal/organizations", internal.list_organizations)
    r.add_get("/internal/organizations/{org_id}", internal.get_organization)
