from aiohttp import web

from .account import handlers as account
from .api_keys import handlers as api_keys
from .keys import handlers as keys
from .security_log import handlers as security_log
from .sessions import handlers as sessions
from .staff import handlers as staff
from .users import handlers as users


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/.well-known/jwks.json", keys.jwks)
    r.add_post("/v1/auth/signup", users.signup)
    r.add_post("/v1/auth/login", sessions.login)
    r.add_post("/v1/auth/refresh", sessions.refresh)
    r.add_post("/v1/auth/logout", sessions.logout)
    r.add_post("/v1/auth/logout-all", sessions.logout_all)
    r.add_get("/v1/auth/sessions", sessions.list_sessions)
    r.add_delete("/v1/auth/sessions/{session_id}", sessions.delete_session)
    r.add_get("/v1/auth/me", users.me)
    r.add_post("/v1/auth/password", users.change_password)
    r.add_post("/v1/auth/verify-email/request", account.request_verification)
    r.add_post("/v1/auth/verify-email", account.verify_email)
    r.add_post("/v1/auth/password-reset/request", account.request_password_reset)
    r.add_post("/v1/auth/password-reset", account.reset_password)
    r.add_get("/v1/auth/security-events", security_log.list_security_events)
    r.add_get("/internal/users/{user_id}", users.internal_user)
    r.add_post("/v1/organizations/{org_id}/api-keys", api_keys.create)
    r.add_get("/v1/organizations/{org_id}/api-keys", api_keys.list_keys)
    r.add_delete("/v1/organizations/{org_id}/api-keys/{key_id}", api_keys.revoke)
    r.add_get("/v1/admin/organizations", staff.organizations)
    r.add_post("/v1/admin/access", staff.access)
    r.add_post("/internal/api-keys/resolve", api_keys.resolve)
    r.add_post("/internal/api-keys/usage", api_keys.usage)
