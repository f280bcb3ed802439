"""Public routes of auth-service, declared for the gateway's OpenAPI document."""
from shared.errors import (CurrentPasswordIncorrect, EmailTaken, InvalidCredentials, LoginThrottled, NotAMember,
                           PasswordUnchanged, RefreshTokenInvalid, SessionNotFound)
from shared.openapi import Operation, Param
from shared.pagination import PageQuery

from .sessions.schemas import LoginRequest, LoginResponse, RefreshRequest, RefreshResponse, SessionOut
from .users.schemas import MeOut, PasswordChangeRequest, SignupRequest, SignupResponse

TAG = "auth"

OPERATIONS: list[Operation] = [
    Operation("GET", "/.well-known/jwks.json", "Public keys that verify access tokens (JWKS)", TAG, public=True,
              response_headers=("Cache-Control",), operation_id="getJwks",
              description="Every configured key is published; during a key rotation both the old and the new key."),
    Operation("POST", "/v1/auth/signup", "Create an account (and optionally its organization)", TAG, status=201,
              request=SignupRequest, response=SignupResponse, public=True, operation_id="signup",
              problems=(EmailTaken,), request_example={"email": "ada@example.com", "password": "correct-horse-battery",
                                                       "name": "Ada Lovelace", "organization_name": "Analytical Engines"},
              description="With `organization_name` the organization is created with the new user as owner, "
                          "all or nothing: if it cannot be created, no account remains (503) and a retry succeeds."),
    Operation("POST", "/v1/auth/login", "Sign in with email and password", TAG, request=LoginRequest,
              response=LoginResponse, public=True, operation_id="login", problems=(InvalidCredentials, NotAMember, LoginThrottled),
              request_example={"email": "ada@example.com", "password": "correct-horse-battery"},
              description="One answer for a wrong password and an unknown email. Without `organization_id` the "
                          "token is scoped to the oldest membership (or none); 403 if not a member of the one "
                          "asked for. Failed attempts are throttled per account and per client address (429)."),
    Operation("POST", "/v1/auth/refresh", "Rotate a refresh token", TAG, request=RefreshRequest,
              response=RefreshResponse, public=True, operation_id="refreshTokens", problems=(RefreshTokenInvalid, NotAMember),
              request_example={"refresh_token": "rt_6Jx2...", "organization_id": "6f1c2b7e-2a4d-4f7e-9a51-0c3b8d2e4f10"},
              description="The presented token is spent and a successor issued. Within the grace window the "
                          "just-spent token answers with the same successor; any other reuse of a spent token "
                          "ends the whole session (401). `organization_id` switches the token's organization; "
                          "without it the session keeps its current one while the user is still a member."),
    Operation("POST", "/v1/auth/logout", "End the current session", TAG, status=204, operation_id="logout", api_key=False),
    Operation("POST", "/v1/auth/logout-all", "End every session of the caller", TAG, status=204, operation_id="logoutAll",
              api_key=False),
    Operation("GET", "/v1/auth/sessions", "The caller's live sessions", TAG, response=SessionOut,
              response_is_list=True, query=PageQuery, operation_id="listSessions", api_key=False),
    Operation("DELETE", "/v1/auth/sessions/{session_id}", "End one of the caller's sessions", TAG, status=204,
              problems=(SessionNotFound,), params=[Param("session_id", "path", {"type": "string", "format": "uuid"}, True)],
              operation_id="deleteSession", api_key=False),
    Operation("GET", "/v1/auth/me", "The caller", TAG, response=MeOut, operation_id="getMe", api_key=False),
    Operation("POST", "/v1/auth/password", "Change the password (ends every other session)", TAG, status=204,
              request=PasswordChangeRequest, operation_id="changePassword", api_key=False,
              problems=(CurrentPasswordIncorrect, PasswordUnchanged, LoginThrottled),
              request_example={"current_password": "correct-horse-battery", "new_password": "a-new-long-passphrase"}),
]
