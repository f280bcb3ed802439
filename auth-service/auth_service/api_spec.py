"""Public routes of auth-service, declared for the gateway's OpenAPI document."""
from shared.admin import AdminOrganizationOut, AdminOrganizationQuery
from shared.errors import (
    ApiKeyNotFound,
    CurrentPasswordIncorrect,
    EmailRequestThrottled,
    EmailTaken,
    EmailTokenInvalid,
    InvalidCredentials,
    LoginThrottled,
    NotAMember,
    OrganizationNotFound,
    PasswordUnchanged,
    PermissionMissing,
    PermissionNotHeld,
    RefreshTokenInvalid,
    SessionNotFound,
    StaffOnly,
)
from shared.openapi import Operation, Param
from shared.pagination import PageQuery

from .account.schemas import PasswordResetBody, PasswordResetRequestBody, VerifyEmailRequest
from .api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from .security_log.schemas import SecurityEventOut
from .sessions.schemas import LoginRequest, LoginResponse, RefreshRequest, RefreshResponse, SessionOut
from .staff.schemas import StaffAccessRequest, StaffAccessResponse
from .users.schemas import MeOut, PasswordChangeRequest, SignupRequest, SignupResponse

TAG = "auth"
API_KEYS = "/v1/organizations/{org_id}/api-keys"
ORG_ID = Param("org_id", "path", {"type": "string", "format": "uuid"}, True)

OPERATIONS: list[Operation] = [
    Operation("GET", "/.well-known/jwks.json", "Public keys that verify access tokens (JWKS)", TAG, public=True,
              response_headers=("Cache-Control",), operation_id="getJwks",
              description="Every configured key is published; during a key rotation both the old and the new key."),
    Operation("POST", "/v1/auth/signup", "Create an account (and optionally its organization)", TAG, status=201,
              request=SignupRequest, response=SignupResponse, public=True, operation_id="signup",
              problems=(EmailTaken,),
              request_example={"email": "ada@example.com", "password": "correct-horse-battery",
                               "name": "Ada Lovelace", "organization_name": "Analytical Engines"},
              description="With `organization_name` the organization is created with the new user as owner, "
                          "all or nothing: if it cannot be created, no account remains (503) and a retry succeeds."),
    Operation("POST", "/v1/auth/login", "Sign in with email and password", TAG, request=LoginRequest,
              response=LoginResponse, public=True, operation_id="login",
              problems=(InvalidCredentials, NotAMember, LoginThrottled),
              request_example={"email": "ada@example.com", "password": "correct-horse-battery"},
              description="One answer for a wrong password and an unknown email. Without `organization_id` the "
                          "token is scoped to the oldest membership (or none); 403 if not a member of the one "
                          "asked for. Failed attempts are throttled per account and per client address (429)."),
    Operation("POST", "/v1/auth/refresh", "Rotate a refresh token", TAG, request=RefreshRequest,
              response=RefreshResponse, public=True, operation_id="refreshTokens",
              problems=(RefreshTokenInvalid, NotAMember),
              request_example={"refresh_token": "rt_6Jx2...",
                               "organization_id": "6f1c2b7e-2a4d-4f7e-9a51-0c3b8d2e4f10"},
              description="The presented token is spent and a successor issued. Within the grace window the "
                          "just-spent token answers with the same successor; any other reuse of a spent token "
                          "ends the whole session (401). `organization_id` switches the token's organization; "
                          "without it the session keeps its current one while the user is still a member."),
    Operation("POST", "/v1/auth/logout", "End the current session", TAG, status=204, operation_id="logout",
              api_key=False),
    Operation("POST", "/v1/auth/logout-all", "End every session of the caller", TAG, status=204,
              operation_id="logoutAll", api_key=False),
    Operation("GET", "/v1/auth/sessions", "The caller's live sessions", TAG, response=SessionOut,
              response_is_list=True, query=PageQuery, operation_id="listSessions", api_key=False),
    Operation("DELETE", "/v1/auth/sessions/{session_id}", "End one of the caller's sessions", TAG, status=204,
              problems=(SessionNotFound,),
              params=[Param("session_id", "path", {"type": "string", "format": "uuid"}, True)],
              operation_id="deleteSession", api_key=False),
    Operation("GET", "/v1/auth/me", "The caller", TAG, response=MeOut, operation_id="getMe", api_key=False),
    Operation("POST", "/v1/auth/password", "Change the password (ends every other session)", TAG, status=204,
              request=PasswordChangeRequest, operation_id="changePassword", api_key=False,
              problems=(CurrentPasswordIncorrect, PasswordUnchanged, LoginThrottled),
              request_example={"current_password": "correct-horse-battery", "new_password": "a-new-long-passphrase"}),
    Operation("POST", "/v1/auth/verify-email/request", "Send a new email-verification link", TAG, status=202,
              operation_id="requestEmailVerification", api_key=False, problems=(EmailRequestThrottled,),
              response_headers=("Retry-After",),
              description="Signup sends the first link; this sends another to the caller's address (nothing when "
                          "it is already verified). Throttled per user (429)."),
    Operation("POST", "/v1/auth/verify-email", "Verify the email address with the token from the link", TAG,
              status=204, request=VerifyEmailRequest, public=True, operation_id="verifyEmail",
              problems=(EmailTokenInvalid,), request_example={"token": "ev_Zp3...from-the-link"},
              description="The token is single use and valid for 24 hours; `GET /v1/auth/me` then shows "
                          "`email_verified: true`. An unknown, expired or used token is 422 "
                          "(`invalid_email_token`). Accepting an invitation also verifies the address it was "
                          "sent to."),
    Operation("POST", "/v1/auth/password-reset/request", "Email a password-reset link", TAG, status=202,
              request=PasswordResetRequestBody, public=True, response_headers=("Retry-After",),
              operation_id="requestPasswordReset", problems=(EmailRequestThrottled,),
              request_example={"email": "ada@example.com"},
              description="The same answer, after the same time, whether or not an account has this email. "
                          "Throttled per email and per client address (429). Only the newest link of a user "
                          "works."),
    Operation("POST", "/v1/auth/password-reset", "Set a new password with the token from the reset link", TAG,
              status=204, request=PasswordResetBody, public=True, operation_id="resetPassword",
              problems=(EmailTokenInvalid,),
              request_example={"token": "pr_Q8x...from-the-link", "new_password": "a-new-long-passphrase"},
              description="The token is single use, valid for 30 minutes, and only the newest one of the user "
                          "works. Every session of the user ends (their access tokens are refused within "
                          "seconds)."),
    Operation("GET", "/v1/auth/security-events", "The caller's account security log", TAG,
              response=SecurityEventOut, response_is_list=True, query=PageQuery, operation_id="listSecurityEvents",
              api_key=False,
              description="Newest first: sign-ins (succeeded and failed), password changes and resets, email "
                          "verification, ended sessions and refresh-token reuse, each with the client address and "
                          "user agent. `type` is the event type (`auth.login_succeeded`, `auth.login_failed`, "
                          "`auth.password_changed`, `auth.password_reset`, `auth.email_verified`, "
                          "`auth.session_revoked`, `auth.refresh_token_reused`). Kept 90 days."),
    # ------------------------------------------------------------ API keys
    Operation("POST", API_KEYS, "Create an API key (the key is shown only in this answer)", "api-keys", status=201,
              request=ApiKeyCreate, response=ApiKeyCreated, params=[ORG_ID], operation_id="createApiKey",
              api_key=False, problems=(OrganizationNotFound, PermissionMissing, PermissionNotHeld),
              request_example={"name": "CI exporter", "permissions": ["tickets:read"], "expires_in_days": 90},
              response_headers=("Cache-Control",),
              description="Needs `api_keys:manage` and a signed-in user (an API key cannot create keys: 403). "
                          "`permissions` must be a subset of the caller's own (403 otherwise). The key is `sk_` "
                          "plus 256 random bits, stored only as a hash; `prefix` (its first 12 characters) "
                          "names it in lists and logs. Send it as `Authorization: Bearer sk_...` on any route its "
                          "permissions allow, in its own organization only (another organization answers 404, "
                          "`/v1/auth/*` answers 403); it is rate limited per key."),
    Operation("GET", API_KEYS, "List the organization's API keys (never the key)", "api-keys", response=ApiKeyOut,
              response_is_list=True, query=PageQuery, params=[ORG_ID], operation_id="listApiKeys", api_key=False,
              problems=(OrganizationNotFound, PermissionMissing),
              description="Live keys, newest first; `last_used_at` moves at most once a minute."),
    Operation("DELETE", API_KEYS + "/{key_id}", "Revoke an API key", "api-keys", status=204,
              params=[ORG_ID, Param("key_id", "path", {"type": "string", "format": "uuid"}, True)],
              operation_id="revokeApiKey", api_key=False,
              problems=(OrganizationNotFound, PermissionMissing, ApiKeyNotFound),
              description="The key stops working at once (within 5 seconds at the latest) on every gateway."),
    # ------------------------------------------------------------ platform staff
    Operation("GET", "/v1/admin/organizations", "Every organization (platform staff)", "admin",
              response=AdminOrganizationOut, response_is_list=True, query=AdminOrganizationQuery,
              operation_id="listAllOrganizations", api_key=False, problems=(StaffOnly,),
              description="Staff only (403 otherwise); staff is granted from the command line "
                          "(`python -m auth_service staff grant EMAIL`), never over HTTP. `q` matches the name or "
                          "slug; deleted organizations are listed with their `deleted_at`."),
    Operation("POST", "/v1/admin/access", "Read-only access to one organization (platform staff)", "admin",
              status=201, request=StaffAccessRequest, response=StaffAccessResponse, operation_id="grantStaffAccess",
              api_key=False, problems=(StaffOnly, OrganizationNotFound),
              request_example={"organization_id": "6f1c2b7e-2a4d-4f7e-9a51-0c3b8d2e4f10",
                               "reason": "Support ticket #4711: the customer asked us to look at their queue"},
              response_headers=("Cache-Control",),
              description="Staff only. Answers an access token for that organization (role `staff`, 30 minutes, "
                          "no refresh token) that reads tickets (internal comments too), members and the audit "
                          "log through the same row-level security as everyone; every write answers 403. The "
                          "grant and its `reason` land in the organization's audit log (`staff.access_granted`). "
                          "Revoking staff ends these tokens within 5 seconds."),
]
