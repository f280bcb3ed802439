"""One error hierarchy; ``shared.web`` renders every one of them as problem+json (RFC 9457)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FieldError:
    field: str
    message: str


class ProblemError(Exception):
    status: int = 500
    title: str = "Internal Server Error"
    type_slug: str = "internal"

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None, title: str | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        if title:
            self.title = title

    @property
    def type(self) -> str:
        return f"https://errors.saas.example/{self.type_slug}"


class BadRequest(ProblemError):
    status, title, type_slug = 400, "Bad Request", "bad-request"


class Unauthorized(ProblemError):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kw):
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="api"'})
        super().__init__(detail, **kw)


class Forbidden(ProblemError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class NotFound(ProblemError):
    status, title, type_slug = 404, "Not Found", "not-found"


class MethodNotAllowed(ProblemError):
    status, title, type_slug = 405, "Method Not Allowed", "method-not-allowed"


class Conflict(ProblemError):
    status, title, type_slug = 409, "Conflict", "conflict"


class PreconditionFailed(ProblemError):
    status, title, type_slug = 412, "Precondition Failed", "precondition-failed"


class PayloadTooLarge(ProblemError):
    status, title, type_slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMediaType(ProblemError):
    status, title, type_slug = 415, "Unsupported Media Type", "unsupported-media-type"


class ValidationFailed(ProblemError):
    status, title, type_slug = 422, "Unprocessable Content", "validation"


class PreconditionRequired(ProblemError):
    status, title, type_slug = 428, "Precondition Required", "precondition-required"


class RateLimited(ProblemError):
    status, title, type_slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kw):
        headers = kw.pop("headers", {}) or {}
        headers["Retry-After"] = str(max(1, int(retry_after)))
        super().__init__(detail, headers=headers, **kw)
        self.retry_after = retry_after


class BadGateway(ProblemError):
    status, title, type_slug = 502, "Bad Gateway", "bad-gateway"


class ServiceUnavailable(ProblemError):
    status, title, type_slug = 503, "Service Unavailable", "unavailable"


class GatewayTimeout(ProblemError):
    status, title, type_slug = 504, "Gateway Timeout", "gateway-timeout"


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
                          PreconditionRequired, BadGateway, ServiceUnavailable, GatewayTimeout)
}


# ---------------------------------------------------------------- permissions and custom roles (issue 12)

class PermissionMissing(Forbidden):
    """The caller's permissions do not include the one the action needs."""
    type_slug = "permission-missing"
    code = "permission_missing"


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
