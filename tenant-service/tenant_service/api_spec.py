"""Public routes of tenant-service, declared for the gateway's OpenAPI document with the same
pydantic models the handlers validate and answer with."""
from shared.errors import (
                           AccountGone,
                           AlreadyMember,
                           BuiltinRoleImmutable,
                           InvitationEmailMismatch,
                           InvitationExpired,
                           InvitationNotFound,
                           InvitationRevoked,
                           InvitationUsed,
                           LastOwner,
                           MemberNotFound,
                           MembershipEnded,
                           OrganizationNotFound,
                           PermissionMissing,
                           RoleBeyondCaller,
                           RoleInUse,
                           RoleNameTaken,
                           RoleNotFound,
                           SlugTaken,
)
from shared.openapi import Operation
from shared.pagination import PageQuery

from .audit_events.schemas import AuditChainVerification, AuditEvent, AuditEventQuery, AuditExportQuery
from .invitations.schemas import Invitation, InvitationAccept, InvitationCreate, InvitationCreated
from .members.schemas import Member, MemberRoleUpdate, Membership
from .organizations.schemas import MyOrganization, Organization, OrganizationCreate, OrganizationUpdate
from .roles.schemas import PermissionList, RoleCreate, RoleDefinitionOut, RoleUpdate

ORG = "/v1/organizations/{org_id}"
# Every route under /v1/organizations/{org_id}: another organization's id is 404; a write re-checks
# the membership (403 membership_ended) and the permission (403 permission_missing).
IN_ORG = (OrganizationNotFound,)
WRITE = (OrganizationNotFound, MembershipEnded, PermissionMissing)
SCOPED = ("The token must be scoped (`tid`) to `org_id`; any other organization id answers 404. "
          "Checks are made against permissions (GET /v1/permissions). Writes re-check the caller's "
          "membership in the database and act with the permissions both the token and the stored role "
          "grant (403 for a member removed, demoted or narrowed moments ago).")
HAND_OUT = ("A caller never acts on a role (grants it, invites with it, changes or removes a holder of it) "
            "holding a permission the caller lacks, and a role that is admin level (holds any of "
            "members:invite, members:manage, roles:manage, api_keys:manage, organization:manage, "
            "organization:delete, admins:manage) only with admins:manage: type `role-beyond-caller`. ")

OPERATIONS: list[Operation] = [
    Operation("POST", "/v1/organizations", "Create an organization (the caller becomes its owner)", "organizations",
              status=201, request=OrganizationCreate, response=Organization, problems=(SlugTaken,),
              operation_id="createOrganization", api_key=False,
              request_example={"name": "Acme Support", "slug": "acme-support"},
              description="Any signed-in user, with or without an organization-scoped token. The slug is "
                          "derived from the name when absent (suffixed when taken); an explicit slug that "
                          "is taken is 409."),
    Operation("GET", "/v1/organizations", "List the caller's organizations", "organizations",
              response=MyOrganization, response_is_list=True, query=PageQuery, operation_id="listMyOrganizations",
              api_key=False,
              description="Live organizations the caller belongs to, oldest membership first."),
    Operation("GET", ORG, "Get an organization", "organizations", response=Organization, problems=IN_ORG,
              operation_id="getOrganization",
              description=SCOPED),
    Operation("PATCH", ORG, "Rename an organization or change its slug (organization:manage)", "organizations",
              request=OrganizationUpdate, response=Organization, problems=WRITE + (SlugTaken,), description=SCOPED,
              operation_id="updateOrganization", request_example={"name": "Acme Customer Care"}),
    Operation("DELETE", ORG, "Delete an organization (organization:delete; soft delete)", "organizations", status=204,
              problems=WRITE, operation_id="deleteOrganization",
              description="The organization and its tickets disappear for everyone; sessions scoped to it end. "
                          + SCOPED),
    Operation("GET", "/v1/permissions", "The permission catalogue", "roles", response=PermissionList,
              operation_id="listPermissions",
              description="Every permission a role or an API key can hold, with what it allows. Any signed-in "
                          "caller."),
    Operation("GET", f"{ORG}/roles", "List the organization's roles", "roles", response=RoleDefinitionOut,
              response_is_list=True, query=PageQuery, problems=IN_ORG, operation_id="listRoles",
              description="The four built-in roles (weakest first, `builtin: true`, fixed permission sets) "
                          "then the custom ones, oldest first. " + SCOPED),
    Operation("POST", f"{ORG}/roles", "Create a custom role (roles:manage)", "roles", status=201,
              request=RoleCreate, response=RoleDefinitionOut, problems=WRITE + (RoleBeyondCaller, RoleNameTaken),
              operation_id="createRole",
              request_example={"name": "Triage lead", "description": "Sorts and assigns incoming tickets",
                               "permissions": ["tickets:read_all", "tickets:triage", "comments:create"]},
              description="Never a permission the caller lacks (403, type `role-beyond-caller`); the name is "
                          "unique in the organization in any letter case and not a built-in name (409, type "
                          "`role-name-taken`); unknown permission names are 422. Event `role.created`. " + SCOPED),
    Operation("PATCH", f"{ORG}/roles/{{role_id}}", "Rename a custom role or change its description or "
              "permissions (roles:manage)", "roles", request=RoleUpdate, response=RoleDefinitionOut,
              problems=WRITE + (RoleNotFound, BuiltinRoleImmutable, RoleBeyondCaller, RoleNameTaken),
              operation_id="updateRole", request_example={"permissions": ["tickets:read_all", "tickets:triage"]},
              description="Built-in roles: 409 (type `builtin-role-immutable`). " + HAND_OUT + "(for the role "
                          "as it is and as it becomes). A change of permissions, or a rename, reaches every "
                          "live access token carrying the role within 5 seconds: tokens issued before it answer "
                          "401 and a refresh gives one with the new permissions. Event `role.updated` with "
                          "`changes`. " + SCOPED),
    Operation("DELETE", f"{ORG}/roles/{{role_id}}", "Delete a custom role (roles:manage)", "roles", status=204,
              problems=WRITE + (RoleNotFound, BuiltinRoleImmutable, RoleBeyondCaller, RoleInUse),
              operation_id="deleteRole",
              description="409 (type `role-in-use`) while a member or a pending invitation holds it; built-in "
                          "roles: 409. " + HAND_OUT + "Event `role.deleted`. " + SCOPED),
    Operation("GET", f"{ORG}/members", "List members (members:read)", "members", response=Member,
              response_is_list=True, query=PageQuery, problems=IN_ORG + (PermissionMissing,),
              operation_id="listMembers",
              description="Oldest first. `email` and `name` are null until the user's profile has reached "
                          "this service. " + SCOPED),
    Operation("PATCH", f"{ORG}/members/{{user_id}}", "Change a member's role", "members",
              request=MemberRoleUpdate, response=Member, problems=WRITE + (MemberNotFound, RoleBeyondCaller, LastOwner),
              operation_id="changeMemberRole", request_example={"role": "agent"},
              description="`members:manage`. `role` is a built-in or a custom role name of the organization "
                          "(422 otherwise). " + HAND_OUT + "With the built-in roles: admins change roles of "
                          "members below admin, up to agent; owners grant and revoke admin and owner. The last "
                          "owner cannot be demoted (409). " + SCOPED),
    Operation("DELETE", f"{ORG}/members/{{user_id}}", "Remove a member, or leave", "members", status=204,
              problems=WRITE + (MemberNotFound, RoleBeyondCaller, LastOwner), operation_id="removeMember",
              description="Anyone may remove themself; otherwise `members:manage` and the rule for roles: "
                          + HAND_OUT + "(admins remove members below admin; owners remove anyone). The last "
                          "owner cannot leave or be removed (409). " + SCOPED),
    Operation("POST", f"{ORG}/invitations", "Invite someone by email (members:invite)", "invitations", status=201,
              request=InvitationCreate, response=InvitationCreated,
              problems=WRITE + (RoleBeyondCaller, AlreadyMember),
              operation_id="createInvitation", request_example={"email": "grace@example.com", "role": "agent"},
              description="The token is returned once, here, and stored only hashed; it expires after 7 days "
                          "and is single use. `role` is a built-in or a custom role name of the organization "
                          "(422 otherwise). " + HAND_OUT + "409 when a member already has that email. " + SCOPED),
    Operation("GET", f"{ORG}/invitations", "List pending invitations (members:invite)", "invitations",
              response=Invitation, response_is_list=True, query=PageQuery,
              problems=IN_ORG + (PermissionMissing,), operation_id="listInvitations",
              description="Neither accepted, revoked nor expired; newest first; never the tokens. " + SCOPED),
    Operation("DELETE", f"{ORG}/invitations/{{invitation_id}}", "Revoke a pending invitation (members:invite)",
              "invitations", status=204, problems=WRITE + (InvitationNotFound, RoleBeyondCaller),
              operation_id="revokeInvitation",
              description="404 when not pending. " + HAND_OUT + SCOPED),
    Operation("POST", "/v1/invitations/accept", "Accept an invitation", "invitations",
              request=InvitationAccept, response=Membership, operation_id="acceptInvitation", api_key=False,
              problems=(InvitationNotFound, InvitationRevoked, InvitationExpired, InvitationEmailMismatch,
                        InvitationUsed, AlreadyMember, AccountGone),
              request_example={"token": "inv_3q2-7Xv..."},
              description="Any signed-in user whose email matches the invitation's (403 otherwise). Unknown, "
                          "revoked and expired tokens are 404; a used one, or a caller who already belongs "
                          "to the organization, is 409. An account that no longer exists is 401."),
    Operation("GET", f"{ORG}/audit-events", "Read the organization's audit log (audit:read)", "audit",
              response=AuditEvent, response_is_list=True, query=AuditEventQuery, problems=IN_ORG + (PermissionMissing,),
              operation_id="listAuditEvents",
              description="The stored event envelopes, newest first (keyset on occurred_at, id). `since` "
                          "is inclusive, `until` exclusive. " + SCOPED),
    Operation("GET", f"{ORG}/audit-events/export", "Export the organization's audit log (audit:read)", "audit",
              response=AuditEvent, response_media_type="application/x-ndjson", query=AuditExportQuery,
              problems=IN_ORG + (PermissionMissing,), operation_id="exportAuditEvents",
              description="Every matching event, oldest first (occurred_at, id), one envelope a line "
                          "(`application/x-ndjson`), streamed in constant memory whatever the size. `since` is "
                          "inclusive, `until` exclusive. Needs the permission `audit:read`. " + SCOPED),
    Operation("GET", f"{ORG}/audit-events/verify", "Verify the audit log's hash chain (audit:read)", "audit",
              response=AuditChainVerification, problems=IN_ORG + (PermissionMissing,), operation_id="verifyAuditChain",
              description="The organization's events form a hash chain (each holds the hash of the one before "
                          "it, from the retention checkpoint on). `first_broken_id` names the first event that "
                          "was altered, is out of place, or follows a removed one; null when intact. Needs the "
                          "permission `audit:read`. " + SCOPED),
]
