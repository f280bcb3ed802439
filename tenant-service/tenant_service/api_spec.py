"""Public routes of tenant-service, declared for the gateway's OpenAPI document with the same
pydantic models the handlers validate and answer with."""
from shared.errors import (AlreadyMember, InvitationEmailMismatch, InvitationExpired, InvitationNotFound,
                           InvitationRevoked, InvitationUsed, LastOwner, MemberNotFound, MembershipEnded,
                           OrganizationNotFound, OwnerRequired, PermissionDenied,
                           SlugTaken)
from shared.openapi import Operation

from .audit_events.schemas import AuditEvent, AuditEventQuery
from .invitations.schemas import (Invitation, InvitationAccept, InvitationCreate, InvitationCreated,
                                  InvitationListQuery)
from .members.schemas import Member, MemberListQuery, MemberRoleUpdate, Membership
from .organizations.schemas import (ListQuery, MyOrganization, Organization, OrganizationCreate,
                                    OrganizationUpdate)

ORG = "/v1/organizations/{org_id}"
# Every route under /v1/organizations/{org_id}: another organization's id is 404; a write re-checks
# the membership (403 membership_ended) and the role (403 permission_denied).
IN_ORG = (OrganizationNotFound,)
WRITE = (OrganizationNotFound, MembershipEnded, PermissionDenied)
SCOPED = ("The token must be scoped (`tid`) to `org_id`; any other organization id answers 404. "
          "Writes re-check the caller's membership in the database and act with the weaker of the "
          "token's role and the stored one (403 for a member removed or demoted moments ago).")

OPERATIONS: list[Operation] = [
    Operation("POST", "/v1/organizations", "Create an organization (the caller becomes its owner)", "organizations",
              status=201, request=OrganizationCreate, response=Organization, problems=(SlugTaken,),
              operation_id="createOrganization", api_key=False, request_example={"name": "Acme Support", "slug": "acme-support"},
              description="Any signed-in user, with or without an organization-scoped token. The slug is "
                          "derived from the name when absent (suffixed when taken); an explicit slug that "
                          "is taken is 409."),
    Operation("GET", "/v1/organizations", "List the caller's organizations", "organizations",
              response=MyOrganization, response_is_list=True, query=ListQuery, operation_id="listMyOrganizations", api_key=False,
              description="Live organizations the caller belongs to, oldest membership first."),
    Operation("GET", ORG, "Get an organization", "organizations", response=Organization, problems=IN_ORG,
              operation_id="getOrganization",
              description=SCOPED),
    Operation("PATCH", ORG, "Rename an organization or change its slug (admin+)", "organizations",
              request=OrganizationUpdate, response=Organization, problems=WRITE + (SlugTaken,), description=SCOPED,
              operation_id="updateOrganization", request_example={"name": "Acme Customer Care"}),
    Operation("DELETE", ORG, "Delete an organization (owner; soft delete)", "organizations", status=204,
              problems=WRITE, operation_id="deleteOrganization",
              description="The organization and its tickets disappear for everyone; sessions scoped to it end. "
                          + SCOPED),
    Operation("GET", f"{ORG}/members", "List members", "members", response=Member, response_is_list=True,
              query=MemberListQuery, problems=IN_ORG, operation_id="listMembers",
              description="Oldest first. `email` and `name` are null until the user's profile has reached "
                          "this service. " + SCOPED),
    Operation("PATCH", f"{ORG}/members/{{user_id}}", "Change a member's role", "members",
              request=MemberRoleUpdate, response=Member, problems=WRITE + (MemberNotFound, OwnerRequired, LastOwner),
              operation_id="changeMemberRole", request_example={"role": "agent"},
              description="Admins change roles of members below admin, up to agent; owners grant and revoke "
                          "admin and owner. The last owner cannot be demoted (409). " + SCOPED),
    Operation("DELETE", f"{ORG}/members/{{user_id}}", "Remove a member, or leave", "members", status=204,
              problems=WRITE + (MemberNotFound, OwnerRequired, LastOwner), operation_id="removeMember",
              description="Anyone may remove themself; admins remove members below admin; owners remove "
                          "anyone. The last owner cannot leave or be removed (409). " + SCOPED),
    Operation("POST", f"{ORG}/invitations", "Invite someone by email (admin+)", "invitations", status=201,
              request=InvitationCreate, response=InvitationCreated, problems=WRITE + (OwnerRequired, AlreadyMember),
              operation_id="createInvitation", request_example={"email": "grace@example.com", "role": "agent"},
              description="The token is returned once, here, and stored only hashed; it expires after 7 days "
                          "and is single use. Admins invite up to agent; owners invite any role. 409 when a "
                          "member already has that email. " + SCOPED),
    Operation("GET", f"{ORG}/invitations", "List pending invitations (admin+)", "invitations",
              response=Invitation, response_is_list=True, query=InvitationListQuery, problems=IN_ORG + (PermissionDenied,),
              operation_id="listInvitations",
              description="Neither accepted, revoked nor expired; newest first; never the tokens. " + SCOPED),
    Operation("DELETE", f"{ORG}/invitations/{{invitation_id}}", "Revoke a pending invitation (admin+)",
              "invitations", status=204, problems=WRITE + (InvitationNotFound, OwnerRequired),
              operation_id="revokeInvitation",
              description="404 when not pending. Only owners revoke invitations to admin or owner. " + SCOPED),
    Operation("POST", "/v1/invitations/accept", "Accept an invitation", "invitations",
              request=InvitationAccept, response=Membership, operation_id="acceptInvitation", api_key=False,
              problems=(InvitationNotFound, InvitationRevoked, InvitationExpired, InvitationEmailMismatch,
                        InvitationUsed, AlreadyMember),
              request_example={"token": "inv_3q2-7Xv..."},
              description="Any signed-in user whose email matches the invitation's (403 otherwise). Unknown, "
                          "revoked and expired tokens are 404; a used one, or a caller who already belongs "
                          "to the organization, is 409."),
    Operation("GET", f"{ORG}/audit-events", "Read the organization's audit log (admin+)", "audit",
              response=AuditEvent, response_is_list=True, query=AuditEventQuery, problems=IN_ORG + (PermissionDenied,),
              operation_id="listAuditEvents",
              description="The stored event envelopes, newest first (keyset on occurred_at, id). `since` "
                          "is inclusive, `until` exclusive. " + SCOPED),
]
