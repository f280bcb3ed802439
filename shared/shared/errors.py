"""The registry of problem types: one error hierarchy, one class per distinct cause.

``shared.web`` renders every one of them as problem+json (RFC 9457) with a stable ``type`` URI
and a short snake_case ``code``; the gateway lists them all in ``/openapi.json``.

A class that sets its own ``type_slug`` (kebab-case) is a problem type: it is registered in
``PROBLEM_TYPES`` when it is defined, with its ``code`` (snake_case; derived from the slug when a
class does not set one), its ``status`` and its docstring as the description. A subclass that does
not set ``type_slug`` is the same problem type as its parent (a convenience constructor).
To add a cause: subclass the status class here, in the block of your area, e.g.::

    class EmailTaken(Conflict):
        \"\"\"An account with this email already exists.\"\"\"
        type_slug, code = "email-taken", "email_taken"

and raise it. Slugs and codes are unique (a duplicate fails at import), and a type once
published is never renamed: clients branch on it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict, Unpack

TYPE_BASE = "https://errors.saas.example/"


@dataclass
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class ProblemType:
    slug: str
    code: str
    status: int
    title: str
    description: str
    cls: type[ProblemError]

    @property
    def uri(self) -> str:
        return TYPE_BASE + self.slug

    def example(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.uri, "code": self.code, "title": self.title, "status": self.status,
                                "detail": self.description, "request_id": "0f6b2f4c9d1e4a7b8c3d2e1f0a9b8c7d"}
        if self.status == 422:
            body["errors"] = [{"field": "title", "message": "String should have at least 1 character"}]
        return body


PROBLEM_TYPES: dict[str, ProblemType] = {}
"""Every registered problem type by ``code``."""


class ProblemError(Exception):
    """An unexpected error; the request id identifies it in the logs."""
    status: ClassVar[int] = 500
    title: str = "Internal Server Error"
    type_slug: ClassVar[str] = "internal"
    code: ClassVar[str] = "internal_error"
    default_detail: ClassVar[str | None] = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "type_slug" in cls.__dict__:
            _register(cls)

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None, title: str | None = None):
        detail = detail or self.default_detail or self.title
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        if title:
            self.title = title

    @property
    def type(self) -> str:
        return self.type_uri()

    @classmethod
    def type_uri(cls) -> str:
        return TYPE_BASE + cls.type_slug

    @classmethod
    def problem_type(cls) -> ProblemType:
        return PROBLEM_TYPES[cls.code]


def _register(cls: type[ProblemError]) -> None:
    if "code" not in cls.__dict__:
        cls.code = cls.type_slug.replace("-", "_")
    doc = inspect.getdoc(cls) if cls.__doc__ and "__doc__" in cls.__dict__ else None
    entry = ProblemType(slug=cls.type_slug, code=cls.code, status=cls.status, title=cls.title,
                        description=doc or cls.default_detail or cls.title, cls=cls)
    for other in PROBLEM_TYPES.values():
        # Re-running a module (importlib.reload in a test) redefines the same class: keep the newest.
        if (other.slug == entry.slug or other.code == entry.code) and other.cls.__qualname__ != cls.__qualname__:
            raise TypeError(f"problem type {entry.slug!r}/{entry.code!r} of {cls.__qualname__} is already "
                            f"registered by {other.cls.__qualname__}")
    PROBLEM_TYPES[entry.code] = entry


def problem_type_of(cls: type[ProblemError]) -> ProblemType:
    """The registered type a class answers with (its own, or its nearest registered ancestor's)."""
    return PROBLEM_TYPES[cls.code]


_register(ProblemError)


# ------------------------------------------------------------------ one class per status (generic)

class BadRequest(ProblemError):
    """The request is malformed."""
    status, title, type_slug, code = 400, "Bad Request", "bad-request", "bad_request"


class ProblemOptions(TypedDict, total=False):
    """The keyword arguments of ``ProblemError``, for subclasses that pass them through."""
    errors: list[FieldError] | None
    headers: dict[str, str] | None
    title: str | None


class Unauthorized(ProblemError):
    """Authentication is missing or failed."""
    status, title, type_slug, code = 401, "Unauthorized", "unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kw: Unpack[ProblemOptions]) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="api"'})
        super().__init__(detail, **kw)


class Forbidden(ProblemError):
    """The caller is authenticated but may not do this."""
    status, title, type_slug, code = 403, "Forbidden", "forbidden", "forbidden"


class NotFound(ProblemError):
    """No route matches the path."""
    status, title, type_slug, code = 404, "Not Found", "not-found", "not_found"


class MethodNotAllowed(ProblemError):
    """The route does not allow this method (see `Allow`)."""
    status, title, type_slug, code = 405, "Method Not Allowed", "method-not-allowed", "method_not_allowed"


class Conflict(ProblemError):
    """The request conflicts with the current state."""
    status, title, type_slug, code = 409, "Conflict", "conflict", "conflict"


class PreconditionFailed(ProblemError):
    """A precondition of the request does not hold."""
    status, title, type_slug, code = 412, "Precondition Failed", "precondition-failed", "precondition_failed"


class PayloadTooLarge(ProblemError):
    """The body is larger than 1 MiB (also when sent chunked)."""
    status, title, type_slug, code = 413, "Payload Too Large", "payload-too-large", "payload_too_large"


class UnsupportedMediaType(ProblemError):
    """The body is not sent as `application/json`."""
    status, title, type_slug = 415, "Unsupported Media Type", "unsupported-media-type"
    code = "unsupported_media_type"


class ValidationFailed(ProblemError):
    """A field of the body, a query parameter or a header is invalid; `errors` names each one."""
    status, title, type_slug, code = 422, "Unprocessable Content", "validation", "validation_failed"


class PreconditionRequired(ProblemError):
    """The request must be conditional."""
    status, title, type_slug = 428, "Precondition Required", "precondition-required"
    code = "precondition_required"


class RateLimited(ProblemError):
    """Too many requests from this caller (per user, per API key or per client address); wait
    `Retry-After` seconds."""
    status, title, type_slug, code = 429, "Too Many Requests", "rate-limited", "rate_limited"

    def __init__(self, detail: str | None = None, *, retry_after: int, headers: dict[str, str] | None = None,
                 errors: list[FieldError] | None = None, title: str | None = None) -> None:
        headers = dict(headers or {})
        headers["Retry-After"] = str(max(1, int(retry_after)))
        super().__init__(detail, headers=headers, errors=errors, title=title)
        self.retry_after = retry_after


class BadGateway(ProblemError):
    """An upstream service could not be reached."""
    status, title, type_slug, code = 502, "Bad Gateway", "bad-gateway", "bad_gateway"


class ServiceUnavailable(ProblemError):
    """A dependency is down; answered at once (never a hang). Retry after `Retry-After`."""
    status, title, type_slug, code = 503, "Service Unavailable", "unavailable", "service_unavailable"


class GatewayTimeout(ProblemError):
    """An upstream service did not answer in time."""
    status, title, type_slug, code = 504, "Gateway Timeout", "gateway-timeout", "gateway_timeout"


# ---------------------------------------------------------------- API keys and platform staff (issue 12)

class InvalidApiKey(Unauthorized):
    """An unknown, forged, expired or revoked API key (one answer for all: nothing leaks)."""
    type_slug, code = "invalid-api-key", "invalid_api_key"


class ApiKeyNotAllowed(Forbidden):
    """An API key on a route only a signed-in user may use (/v1/auth/*, managing keys)."""
    type_slug, code = "api-key-not-allowed", "api_key_not_allowed"


class PermissionNotHeld(Forbidden):
    """Asked to hand out a permission the caller does not hold itself."""
    type_slug, code = "permission-not-held", "permission_not_held"


class StaffOnly(Forbidden):
    """A platform-staff route called by someone who is not staff."""
    type_slug, code = "staff-only", "staff_only"


class StaffReadOnly(Forbidden):
    """A write attempted with platform staff's read-only access."""
    type_slug, code = "staff-read-only", "staff_read_only"


STATUS_CLASSES: dict[int, type[ProblemError]] = {
    c.status: c for c in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict,
                          PreconditionFailed, PayloadTooLarge, UnsupportedMediaType, ValidationFailed,
                          PreconditionRequired, RateLimited, BadGateway, ServiceUnavailable, GatewayTimeout)
}
"""The generic class of each status: the type of a bare HTTP error (e.g. aiohttp's 405)."""


# ------------------------------------------------------------------ the edge (every process)

class MalformedJson(BadRequest):
    """The body is not valid JSON (UTF-8, RFC 8259: no NaN or Infinity, integers within 64 bits)."""
    type_slug, code, default_detail = "malformed-json", "malformed_json", "The body is not valid JSON."


class BodyUnreadable(BadRequest):
    """The body could not be read (a malformed chunked or encoded transfer)."""
    type_slug, code = "body-unreadable", "body_unreadable"
    default_detail = "The body could not be read (malformed chunked or encoded transfer)."


class JsonTooDeep(BadRequest):
    """The JSON body is nested deeper than 32 levels."""
    type_slug, code = "json-too-deep", "json_too_deep"
    default_detail = "The JSON body is nested too deeply."


class ContentEncodingNotAccepted(UnsupportedMediaType):
    """The body was sent with a `Content-Encoding` (compressed bodies are not accepted)."""
    type_slug, code = "content-encoding-not-accepted", "content_encoding_not_accepted"
    default_detail = "Send the body without Content-Encoding (compressed bodies are not accepted)."


class RouteNotFound(NotFound):
    """No route matches this path."""
    type_slug, code, default_detail = "route-not-found", "route_not_found", "No route matches this path."


class CorsNotAllowed(Forbidden):
    """A cross-origin preflight from an origin or with a method the gateway does not allow."""
    type_slug, code = "cors-not-allowed", "cors_not_allowed"


class InvalidCursor(ValidationFailed):
    """`cursor` is not one this API issued for the same list, sort and filters."""
    type_slug, code = "invalid-cursor", "invalid_cursor"

    def __init__(self, message: str = "not a cursor this API issued"):
        super().__init__("The cursor is not valid.", errors=[FieldError("cursor", message)])


# ------------------------------------------------------------------ access tokens and permissions

class TokenMissing(Unauthorized):
    """No `Authorization: Bearer <token>` header was sent."""
    type_slug, code = "token-missing", "token_missing"
    default_detail = "Send an access token as 'Authorization: Bearer <token>'."


class TokenInvalid(Unauthorized):
    """The access token is malformed, not signed by a known key, or otherwise not acceptable."""
    type_slug, code, default_detail = "token-invalid", "token_invalid", "The access token is invalid."


class TokenExpired(Unauthorized):
    """The access token has expired; refresh it."""
    type_slug, code, default_detail = "token-expired", "token_expired", "The access token has expired."


class TokenRevoked(Unauthorized):
    """The session, membership or role behind the access token has ended or changed."""
    type_slug, code, default_detail = "token-revoked", "token_revoked", "The access token has been revoked."


class InternalTokenRequired(Unauthorized):
    """An internal route was called without the platform's internal token (never through the gateway)."""
    type_slug, code = "internal-token-required", "internal_token_required"
    default_detail = "This route is for the platform's own services."


class OrganizationScopeRequired(Forbidden):
    """The route needs an access token scoped to an organization (`tid`)."""
    type_slug, code = "organization-scope-required", "organization_scope_required"
    default_detail = "This route needs a token scoped to an organization."


class PermissionMissing(Forbidden):
    """The caller's permissions (its role's, or the API key's) do not include the one the action needs."""
    type_slug, code = "permission-missing", "permission_missing"
    default_detail = "Your permissions do not allow this action."


# ------------------------------------------------------------------ auth-service

class InvalidCredentials(Unauthorized):
    """Wrong email or password (one answer for both, so accounts cannot be discovered)."""
    type_slug, code, default_detail = "invalid-credentials", "invalid_credentials", "Wrong email or password."


class RefreshTokenInvalid(Unauthorized):
    """The refresh token is unknown, expired, revoked, or a spent one reused (the session ends)."""
    type_slug, code = "refresh-token-invalid", "refresh_token_invalid"
    default_detail = "The refresh token is invalid, expired or revoked."


class NotAMember(Forbidden):
    """The user is not a member of the organization asked for."""
    type_slug, code, default_detail = "not-a-member", "not_a_member", "You are not a member of this organization."


class EmailTaken(Conflict):
    """An account with this email already exists."""
    type_slug, code, default_detail = "email-taken", "email_taken", "An account with this email already exists."

    def __init__(self, detail: str | None = None, **kw: Unpack[ProblemOptions]) -> None:
        kw.setdefault("errors", [FieldError("email", "is already registered")])
        super().__init__(detail, **kw)


class CurrentPasswordIncorrect(ValidationFailed):
    """`current_password` is not the account's password."""
    type_slug, code = "current-password-incorrect", "current_password_incorrect"

    def __init__(self) -> None:
        super().__init__("The current password is incorrect.",
                         errors=[FieldError("current_password", "is incorrect")])


class PasswordUnchanged(ValidationFailed):
    """The new password is the current one."""
    type_slug, code = "password-unchanged", "password_unchanged"

    def __init__(self) -> None:
        super().__init__("The new password must differ from the current one.",
                         errors=[FieldError("new_password", "must differ from the current password")])


class SessionNotFound(NotFound):
    """No such session of the caller (another user's sessions answer the same)."""
    type_slug, code, default_detail = "session-not-found", "session_not_found", "No such session."


class BadTokenThrottled(RateLimited):
    """Too many requests with an invalid access token or API key from this address; wait `Retry-After` seconds."""
    type_slug, code = "bad-token-throttled", "bad_token_throttled"


class LoginThrottled(RateLimited):
    """Too many failed sign-ins for this account or from this address; wait `Retry-After` seconds."""
    type_slug, code = "login-throttled", "login_throttled"


class ApiKeyNotFound(NotFound):
    """No such live API key in this organization."""
    type_slug, code, default_detail = "api-key-not-found", "api_key_not_found", "No such API key."


class UserNotFound(NotFound):
    """Internal: no such account (auth-service's profile route for tenant-service)."""
    type_slug, code, default_detail = "user-not-found", "user_not_found", "No such user."


# ------------------------------------------------------------------ tenant-service

class OrganizationNotFound(NotFound):
    """No such organization (also another organization's id, and a deleted one)."""
    type_slug, code, default_detail = "organization-not-found", "organization_not_found", "No such organization."


class MembershipEnded(Forbidden):
    """The caller was removed from the organization moments ago (the token is still valid for seconds)."""
    type_slug, code = "membership-ended", "membership_ended"
    default_detail = "You are no longer a member of this organization."


class AccountGone(Unauthorized):
    """The access token is valid but its account no longer exists."""
    type_slug, code, default_detail = "account-gone", "account_gone", "This account no longer exists."


class SlugTaken(Conflict):
    """The organization slug is already taken."""
    type_slug, code = "slug-taken", "slug_taken"

    def __init__(self, slug: str):
        super().__init__(f"The slug {slug!r} is already taken.", errors=[FieldError("slug", "is already taken")])


class LastOwner(Conflict):
    """An organization must keep at least one owner."""
    type_slug, code, default_detail = "last-owner", "last_owner", "An organization must keep at least one owner."


class MemberNotFound(NotFound):
    """No such member of the organization."""
    type_slug, code, default_detail = "member-not-found", "member_not_found", "No such member."


class AlreadyMember(Conflict):
    """The invited email, or the caller accepting, already belongs to the organization."""
    type_slug, code = "already-member", "already_member"


class InvitationNotFound(NotFound):
    """No such pending invitation (an unknown token, or not pending any more)."""
    type_slug, code, default_detail = "invitation-not-found", "invitation_not_found", "No such invitation."


class InvitationExpired(NotFound):
    """The invitation has expired (after 7 days)."""
    type_slug, code, default_detail = "invitation-expired", "invitation_expired", "This invitation has expired."


class InvitationRevoked(NotFound):
    """The invitation was revoked."""
    type_slug, code, default_detail = "invitation-revoked", "invitation_revoked", "This invitation has been revoked."


class InvitationUsed(Conflict):
    """The invitation has already been accepted (single use)."""
    type_slug, code = "invitation-used", "invitation_used"
    default_detail = "This invitation has already been used."


class InvitationEmailMismatch(Forbidden):
    """The invitation was sent to another email than the caller's."""
    type_slug, code = "invitation-email-mismatch", "invitation_email_mismatch"
    default_detail = "This invitation was sent to another email address."


class SignupRollbackRefused(Conflict):
    """Internal: an organization is not undone as a failed signup once it is more than that."""
    type_slug, code = "signup-rollback-refused", "signup_rollback_refused"


# ------------------------------------------------------------------ ticket-service

class TicketNotFound(NotFound):
    """No such ticket (also a deleted one and another organization's)."""
    type_slug, code, default_detail = "ticket-not-found", "ticket_not_found", "No such ticket."


class TicketFieldForbidden(Forbidden):
    """The caller may not change these fields of the ticket (without `tickets:triage`: title and description of
    one's own tickets only)."""
    type_slug, code = "ticket-field-forbidden", "ticket_field_forbidden"

    def __init__(self, fields: list[str]):
        super().__init__(f"Your role may not change: {', '.join(sorted(fields))}.")


class InternalCommentForbidden(Forbidden):
    """Internal comments need the permission `comments:internal`."""
    type_slug, code = "internal-comment-forbidden", "internal_comment_forbidden"
    default_detail = "Internal comments need the permission 'comments:internal'."


class IfMatchRequired(PreconditionRequired):
    """The change needs `If-Match` with the ticket's ETag (or `*`)."""
    type_slug, code = "if-match-required", "if_match_required"
    default_detail = "Send If-Match with the ticket's ETag (read it with GET first)."


class EtagMismatch(PreconditionFailed):
    """The ticket changed since it was read (`If-Match` is stale); the answer carries the current `ETag`."""
    type_slug, code = "etag-mismatch", "etag_mismatch"

    def __init__(self, current_etag: str):
        super().__init__("The ticket changed since you read it; read it again and retry.",
                         headers={"ETag": current_etag})


class StatusTransitionNotAllowed(Conflict):
    """The contract's status table does not allow this move."""
    type_slug, code = "status-transition-not-allowed", "status_transition_not_allowed"

    def __init__(self, old: str, new: str):
        super().__init__(f"A ticket cannot move from {old} to {new}.",
                         errors=[FieldError("status", f"cannot move from {old} to {new}")])


class TicketNotDeleted(Conflict):
    """Only a deleted ticket can be restored."""
    type_slug, code, default_detail = "ticket-not-deleted", "ticket_not_deleted", "The ticket is not deleted."


class AssigneeNotAssignable(ValidationFailed):
    """The assignee must be a member of this organization holding `tickets:read_all`."""
    type_slug, code = "assignee-not-assignable", "assignee_not_assignable"

    def __init__(self) -> None:
        super().__init__("The assignee must be an agent, admin or owner of this organization.",
                         errors=[FieldError("assignee_id", "not an agent or above of this organization")])


class IdempotencyKeyReused(ValidationFailed):
    """This `Idempotency-Key` was used with another request body."""
    type_slug, code = "idempotency-key-reused", "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used with a different request body.",
                         errors=[FieldError("Idempotency-Key", "already used with a different body")])


class IdempotencyKeyInvalid(ValidationFailed):
    """`Idempotency-Key` must be 1 to 255 visible ASCII characters."""
    type_slug, code = "idempotency-key-invalid", "idempotency_key_invalid"

    def __init__(self) -> None:
        super().__init__("The Idempotency-Key header is not valid.",
                         errors=[FieldError("Idempotency-Key", "1 to 255 visible ASCII characters")])


class AdminRequired(PermissionMissing):
    """Deleting and restoring tickets needs `tickets:delete` (same type as any missing permission)."""
    default_detail = "Deleting and restoring tickets needs the permission 'tickets:delete'."


class IfMatchInvalid(ValidationFailed):
    """`If-Match` must be `*` or a list of entity tags (`"3"`, `W/"3"`)."""
    type_slug, code = "if-match-invalid", "if_match_invalid"

    def __init__(self) -> None:
        super().__init__("The If-Match header is not valid.",
                         errors=[FieldError("If-Match", "must be * or a list of entity tags")])


# Names kept for the code that imported them before the registry.
TicketVersionMismatch = EtagMismatch
StatusMoveNotAllowed = StatusTransitionNotAllowed
TicketChangeForbidden = TicketFieldForbidden
InvalidIdempotencyKey = IdempotencyKeyInvalid
InvalidRefreshToken = RefreshTokenInvalid


# ---------------------------------------------------------------- permissions and custom roles (issue 12)

class RoleNotFound(NotFound):
    """No such role in the organization."""
    type_slug, code, default_detail = "role-not-found", "role_not_found", "No such role."


class RoleBeyondCaller(Forbidden):
    """A role (to create, widen, grant, change or revoke) holds a permission the caller lacks,
    or is admin level (shared.permissions.ADMIN_LEVEL) and the caller lacks admins:manage."""
    type_slug = "role-beyond-caller"
    code = "role_beyond_caller"


class RoleNameTaken(Conflict):
    """A custom role's name is already used in the organization, or is a built-in name."""
    type_slug = "role-name-taken"
    code = "role_name_taken"


class BuiltinRoleImmutable(Conflict):
    """Built-in roles cannot be renamed, changed or deleted."""
    type_slug = "builtin-role-immutable"
    code = "builtin_role_immutable"


class RoleInUse(Conflict):
    """A custom role cannot be deleted while a member, a pending invitation or an API key holds it."""
    type_slug = "role-in-use"
    code = "role_in_use"


# --- Account lifecycle (issue 13): email verification and password reset -------------------

class EmailTokenInvalid(ValidationFailed):
    """A verification or password-reset token that is unknown, expired, already used or
    replaced by a newer one (the causes are not told apart: the token is all the caller has)."""
    type_slug = "invalid-email-token"
    code = "invalid_email_token"


class EmailRequestThrottled(RateLimited):
    """Too many verification or password-reset emails asked for this account, email or address; wait
    `Retry-After` seconds."""
    type_slug, code = "email-request-throttled", "email_request_throttled"
