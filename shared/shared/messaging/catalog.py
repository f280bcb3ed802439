"""The events of the contract (API.md, "Events"), defined once: for every type, the subject it
names and a pydantic model of its ``data``.

Producers and consumers import this module; the AsyncAPI document (``shared.messaging.asyncapi``)
generates its JSON Schemas from it, and ``add_event`` checks a producer's ``data`` against it, so
a producer cannot drift from the published document.

Versioning rule: an additive change (a new optional field, a new event type) keeps the envelope's
``version``; a breaking one (a field removed, renamed or retyped, a new required field) raises it.

Types marked ``provisional=True`` are not produced on the branch that wrote this module: their
schema is written from the contract (API.md) and shared/README.md's event table, for the lead to
reconcile with the producers being built in parallel (roles, API keys, staff access; email
verification and password reset are reconciled with their producer, issue 13). ``add_event`` does
not enforce a provisional schema; the end-to-end tests validate every published event, provisional
or not.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# The built-in roles; a member's role may also be a custom role's name (API.md, "Permissions").
RoleName = Annotated[str, Field(min_length=1, max_length=100)]
Changes = Annotated[dict[str, Annotated[list[Any], Field(min_length=2, max_length=2)]],
                    Field(description="`{field: [old, new]}` for every field that changed")]


class EventData(BaseModel):
    """Base of every ``data`` model: a field nobody declared is a drift, not a feature."""
    model_config = ConfigDict(extra="forbid")


class Empty(EventData):
    """No data (``{}``)."""


# --- auth-service -------------------------------------------------------------------------------

class UserRegistered(EventData):
    user_id: UUID
    email: str
    name: str


class LoginSucceeded(EventData):
    session_id: UUID


class LoginFailed(EventData):
    reason: str = Field(description="e.g. `invalid_credentials`")


SessionRevokedReason = Literal["logout", "logout_all", "revoked", "password_changed", "refresh_token_reused",
                               "organization_deleted", "password_reset"]


class SessionRevoked(EventData):
    user_id: UUID
    session_id: UUID
    reason: SessionRevokedReason


class RefreshTokenReused(EventData):
    user_id: UUID
    session_id: UUID


# --- tenant-service -----------------------------------------------------------------------------

class OrganizationCreated(EventData):
    name: str
    slug: str


class OrganizationUpdated(EventData):
    changes: Changes


class InvitationCreated(EventData):
    email: str
    role: RoleName


class InvitationAccepted(EventData):
    email: str
    role: RoleName
    user_id: UUID


class InvitationRevoked(EventData):
    email: str
    role: RoleName


class MembershipCreated(EventData):
    organization_id: UUID
    user_id: UUID
    role: RoleName
    # Added without raising `version` (additive): absent in events published before custom roles.
    permissions: list[str] | None = Field(None, description="What the role grants (shared.permissions names).")


class MembershipRoleChanged(EventData):
    organization_id: UUID
    user_id: UUID
    old_role: RoleName
    role: RoleName
    permissions: list[str] | None = Field(None, description="What the new role grants (absent in older events).")


class MembershipRemoved(EventData):
    organization_id: UUID
    user_id: UUID
    role: RoleName


# --- ticket-service -----------------------------------------------------------------------------

class TicketSnapshot(EventData):
    """The ticket as the API shows it (ticket.created, .deleted, .restored)."""
    id: UUID
    number: int
    title: str
    description: str
    status: Literal["open", "in_progress", "pending", "resolved", "closed"]
    priority: Literal["low", "normal", "high", "urgent"]
    tags: list[str]
    requester_id: UUID
    assignee_id: UUID | None
    created_at: datetime
    updated_at: datetime
    version: int


class TicketUpdated(EventData):
    changes: Changes
    version: int


class TicketCommented(EventData):
    comment_id: UUID
    internal: bool
    author_id: UUID


# --- provisional: written from the contract, producers built in parallel (reconcile) -------------

class RoleCreated(EventData):
    role_id: UUID
    name: RoleName
    description: str
    permissions: list[str]


class RoleUpdated(RoleCreated):
    """The role as it is now, and what changed (``name``, ``description``, ``permissions``)."""
    changes: Changes


class RoleDeleted(RoleCreated):
    """The role as it was."""


class ApiKeyCreated(EventData):
    api_key_id: UUID
    name: str
    prefix: str = Field(description="The key's first 12 characters (never the key itself)")
    permissions: list[str]
    expires_at: datetime | None = None


class ApiKeyRevoked(EventData):
    api_key_id: UUID
    name: str
    prefix: str


class StaffAccessGranted(EventData):
    staff_user_id: UUID
    organization_id: UUID
    reason: str
    role: str = Field(description="Always `staff`.")
    permissions: list[str] = Field(description="What the read-only token grants.")
    expires_at: datetime


class EmailVerified(EventData):
    user_id: UUID
    email: str
    method: Literal["link", "invitation"]  # the link from the email, or an accepted invitation


class PasswordResetRequested(EventData):
    user_id: UUID


class PasswordReset(EventData):
    user_id: UUID


@dataclass(frozen=True)
class EventType:
    name: str
    subject: str
    data: type[EventData]
    summary: str
    provisional: bool = False


def _t(name: str, subject: str, data: type[EventData], summary: str, *, provisional: bool = False) -> EventType:
    return EventType(name, subject, data, summary, provisional)


CATALOG: dict[str, EventType] = {t.name: t for t in [
    _t("user.registered", "user", UserRegistered, "A user signed up."),
    _t("auth.login_succeeded", "user", LoginSucceeded, "A user logged in (a session began)."),
    _t("auth.login_failed", "user", LoginFailed, "A login was refused (subject id `unknown` for an unknown email)."),
    _t("auth.session_revoked", "session", SessionRevoked, "A session ended."),
    _t("auth.refresh_token_reused", "session", RefreshTokenReused,
       "A rotated refresh token was presented again; its session was revoked."),
    _t("auth.password_changed", "user", Empty, "A user changed their password."),
    _t("organization.created", "organization", OrganizationCreated, "An organization was created."),
    _t("organization.updated", "organization", OrganizationUpdated, "An organization was renamed or re-slugged."),
    _t("organization.deleted", "organization", Empty, "An organization was deleted (soft)."),
    _t("invitation.created", "invitation", InvitationCreated, "Someone was invited (never the token)."),
    _t("invitation.accepted", "invitation", InvitationAccepted, "An invitation was accepted."),
    _t("invitation.revoked", "invitation", InvitationRevoked, "A pending invitation was revoked."),
    _t("membership.created", "membership", MembershipCreated,
       "A user joined an organization (subject id `{org_id}:{user_id}`)."),
    _t("membership.role_changed", "membership", MembershipRoleChanged, "A member's role changed."),
    _t("membership.removed", "membership", MembershipRemoved, "A member left or was removed."),
    _t("ticket.created", "ticket", TicketSnapshot, "A ticket was created (data: the ticket)."),
    _t("ticket.updated", "ticket", TicketUpdated, "A ticket changed."),
    _t("ticket.deleted", "ticket", TicketSnapshot, "A ticket was deleted (soft; data: the ticket)."),
    _t("ticket.restored", "ticket", TicketSnapshot, "A deleted ticket was restored (data: the ticket)."),
    _t("ticket.commented", "ticket", TicketCommented, "A comment was added to a ticket."),
    _t("role.created", "role", RoleCreated, "A custom role was created."),
    _t("role.updated", "role", RoleUpdated, "A custom role changed."),
    _t("role.deleted", "role", RoleDeleted, "A custom role was deleted."),
    _t("api_key.created", "api_key", ApiKeyCreated, "An API key was created (never the key)."),
    _t("api_key.revoked", "api_key", ApiKeyRevoked, "An API key was revoked."),
    _t("staff.access_granted", "organization", StaffAccessGranted,
       "Platform staff were granted read-only access to the organization."),
    _t("auth.email_verified", "user", EmailVerified, "A user verified their email address."),
    _t("auth.password_reset_requested", "user", PasswordResetRequested,
       "A password reset was requested for an existing account (never the token)."),
    _t("auth.password_reset", "user", PasswordReset,
       "A password was reset with a reset token; every session of the user ended."),
]}


# Field names no data model may declare (API.md: data never holds a password, a token or its hash).
FORBIDDEN_IN_DATA = {"password", "token", "token_hash", "key", "key_hash", "secret"}


class UnknownEventType(ValueError):
    pass


def event_type(name: str) -> EventType:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownEventType(f"event type {name!r} is not in the catalogue (shared.messaging.catalog)") from None


def check_data(name: str, data: dict[str, Any]) -> None:
    """Raise ValueError when ``data`` does not match the catalogue's model of ``name``.

    Provisional types are not enforced here (see the module docstring)."""
    spec = event_type(name)
    if spec.provisional:
        return
    try:
        spec.data.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"data of {name!r} does not match shared.messaging.catalog: {exc}") from None
