"""Every route of tenant-service (public ones are also declared in api_spec.OPERATIONS)."""
from __future__ import annotations

from aiohttp import web

from .internal import handlers as internal
from .organizations import handlers as organizations


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/organizations", organizations.create_organization)
    r.add_get("/v1/organizations", organizations.list_my_organizations)
    r.add_get("/v1/organizations/{org_id}", organizations.get_organization)
    r.add_patch("/v1/organizations/{org_id}", organizations.update_organization)
    r.add_delete("/v1/organizations/{org_id}", organizations.delete_organization)

    r.add_get("/internal/users/{user_id}/memberships", internal.user_memberships)
    r.add_post("/internal/organizations", internal.create_signup_organization)
    r.add_delete("/internal/organizations/{org_id}", internal.delete_signup_organization)
