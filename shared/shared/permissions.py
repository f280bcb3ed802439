"""The permission catalogue: the one place a permission name is spelled.

Every authorization check in every service asks for a permission, never for a role name; the
four built-in roles are fixed sets of them (API.md, "Permissions and custom roles"), custom
roles are sets an organization defines, and API keys carry a subset of their creator's.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    name: str
    description: str


TICKETS_CREATE = "tickets:create"
TICKETS_READ_OWN = "tickets:read_own"
TICKETS_READ_ALL = "tickets:read_all"
TICKETS_TRIAGE = "tickets:triage"
TICKETS_DELETE = "tickets:delete"
COMMENTS_CREATE = "comments:create"
COMMENTS_INTERNAL = "comments:internal"
MEMBERS_READ = "members:read"
MEMBERS_INVITE = "members:invite"
MEMBERS_MANAGE = "members:manage"
ROLES_MANAGE = "roles:manage"
API_KEYS_MANAGE = "api_keys:manage"
AUDIT_READ = "audit:read"
ORGANIZATION_MANAGE = "organization:manage"
ORGANIZATION_DELETE = "organization:delete"
ADMINS_MANAGE = "admins:manage"

CATALOGUE: tuple[Permission, ...] = (
    Permission(TICKETS_CREATE, "Create tickets."),
    Permission(TICKETS_READ_OWN, "See, comment on and edit the title and description of tickets one requested."),
    Permission(TICKETS_READ_ALL, "See every ticket of the organization."),
    Permission(TICKETS_TRIAGE, "Change the status, priority, assignee and tags of tickets."),
    Permission(TICKETS_DELETE, "Delete and restore tickets."),
    Permission(COMMENTS_CREATE, "Comment on tickets one can see."),
    Permission(COMMENTS_INTERNAL, "See and write internal comments."),
    Permission(MEMBERS_READ, "List the organization's members."),
    Permission(MEMBERS_INVITE, "Invite people to the organization."),
    Permission(MEMBERS_MANAGE, "Change roles of members and remove them (never beyond one's own permissions)."),
    Permission(ROLES_MANAGE, "Create, change and delete custom roles."),
    Permission(API_KEYS_MANAGE, "Create, list and revoke the organization's API keys."),
    Permission(AUDIT_READ, "Read, export and verify the organization's audit log."),
    Permission(ORGANIZATION_MANAGE, "Rename the organization and change its slug."),
    Permission(ORGANIZATION_DELETE, "Delete the organization."),
    Permission(ADMINS_MANAGE, "Grant or revoke roles that hold admins:manage (owner and admin level)."),
)
NAMES: frozenset[str] = frozenset(p.name for p in CATALOGUE)
# For the API document: a permission name is one of the catalogue's (the services answer 422
# naming the unknown ones; the document states the same as an enum).
PERMISSION_NAME_SCHEMA: dict[str, list[str]] = {"enum": [p.name for p in CATALOGUE]}

_MEMBER = frozenset({TICKETS_CREATE, TICKETS_READ_OWN, COMMENTS_CREATE, MEMBERS_READ})
_AGENT = _MEMBER | {TICKETS_READ_ALL, TICKETS_TRIAGE, COMMENTS_INTERNAL}
_ADMIN = _AGENT | {TICKETS_DELETE, MEMBERS_INVITE, MEMBERS_MANAGE, ROLES_MANAGE, API_KEYS_MANAGE, AUDIT_READ,
                   ORGANIZATION_MANAGE}
_OWNER = _ADMIN | {ORGANIZATION_DELETE, ADMINS_MANAGE}

# Built-in roles, weakest first. Their names cannot be taken by a custom role.
BUILTIN_ROLES: dict[str, frozenset[str]] = {"member": _MEMBER, "agent": _AGENT, "admin": _ADMIN, "owner": _OWNER}

# Platform staff looking into one organization: read-only (every write answers 403).
STAFF_ROLE = "staff"
STAFF_PERMISSIONS: frozenset[str] = frozenset({TICKETS_READ_OWN, TICKETS_READ_ALL, COMMENTS_INTERNAL, MEMBERS_READ,
                                              AUDIT_READ})


def builtin_permissions(role: str) -> frozenset[str] | None:
    """The permission set of a built-in role (or of staff access); None for any other name."""
    if role == STAFF_ROLE:
        return STAFF_PERMISSIONS
    return BUILTIN_ROLES.get(role)


def unknown(names: set[str] | frozenset[str] | list[str]) -> list[str]:
    """Names that are not in the catalogue, sorted (for a 422 naming them)."""
    return sorted(set(names) - NAMES)


# Permissions that manage the organization or the access of its people. A role holding any of
# them is "admin level": granting it, changing a holder's role, or removing a holder needs
# admins:manage (the contract's role table: admins hand out roles up to agent and manage
# members below admin; only owners grant or revoke admin and owner).
ADMIN_LEVEL: frozenset[str] = frozenset({MEMBERS_INVITE, MEMBERS_MANAGE, ROLES_MANAGE, API_KEYS_MANAGE,
                                         ORGANIZATION_MANAGE, ORGANIZATION_DELETE, ADMINS_MANAGE})


def is_admin_level(permissions: frozenset[str] | set[str]) -> bool:
    return not ADMIN_LEVEL.isdisjoint(permissions)


def may_hand_out(actor: frozenset[str], role: frozenset[str]) -> bool:
    """May a caller holding ``actor`` grant, revoke or otherwise act on a role holding ``role``?
    Never beyond one's own permissions, and admin-level roles only with admins:manage."""
    if not role <= actor:
        return False
    return ADMINS_MANAGE in actor or not is_admin_level(role)


# An organization's creator gets it, and an organization always keeps at least one holder of
# it (the last-owner rule: an invariant of the organization, not an authorization check).
OWNER_ROLE = "owner"
