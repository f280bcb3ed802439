"""Public routes of ticket-service, declared for the gateway's OpenAPI document with the same
pydantic models the handlers validate and answer with."""
from shared.errors import (
                           AdminRequired,
                           AssigneeNotAssignable,
                           EtagMismatch,
                           IdempotencyKeyInvalid,
                           IdempotencyKeyReused,
                           IfMatchInvalid,
                           IfMatchRequired,
                           InternalCommentForbidden,
                           OrganizationNotFound,
                           OrganizationScopeRequired,
                           PermissionMissing,
                           StatusTransitionNotAllowed,
                           TicketFieldForbidden,
                           TicketNotDeleted,
                           TicketNotFound,
)
from shared.openapi import Operation, Param

from .comments.schemas import CommentCreate, CommentListQuery, CommentOut
from .tickets.schemas import TicketCreate, TicketListQuery, TicketOut, TicketUpdate
from .tickets.service import IF_MATCH_PATTERN

TAG = "tickets"
# A token without an organization is 403; an organization deleted moments ago is 404.
SCOPE = (OrganizationScopeRequired, OrganizationNotFound)
# RFC 9110: `*` or a list of entity tags; ours are strong, `"<version>"`.
ETAG_FORMAT = {"type": "string", "pattern": IF_MATCH_PATTERN, "examples": ['"3"', "*"]}
_IF_MATCH = Param("If-Match", "header", ETAG_FORMAT,
                  description="The ticket's ETag, as returned by GET (or `*`).")
IDEMPOTENCY_KEY = Param("Idempotency-Key", "header",
                        {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
                        description=(
                            "1-255 visible ASCII characters, kept 24 hours per (organization, user). A repeat with "
                            "the same body returns the first response (status, body, ETag) and creates nothing; "
                            "with another body: 422 `idempotency_key_reused`."))
TICKET_EXAMPLE = {"title": "Printer on floor 3 is jammed", "description": "It shows error E-42 since this morning.",
                  "priority": "high", "tags": ["hardware", "floor-3"]}

OPERATIONS: list[Operation] = [
    Operation(
        "POST", "/v1/tickets", "Create a ticket", TAG, status=201, request=TicketCreate, response=TicketOut,
        response_headers=("ETag", "Idempotent-Replayed"), params=[IDEMPOTENCY_KEY], operation_id="createTicket",
        problems=SCOPE + (PermissionMissing, TicketFieldForbidden, AssigneeNotAssignable, IdempotencyKeyInvalid,
                          IdempotencyKeyReused),
        request_example=TICKET_EXAMPLE,
        description=("Needs a token scoped to an organization and `tickets:create` (403 otherwise). The caller "
                     "becomes the requester; `assignee_id` needs `tickets:triage` (403) and must name a member "
                     "holding `tickets:read_all` (422). "
                     "`number` counts from 1 within the organization."),
    ),
    Operation(
        "GET", "/v1/tickets", "List and search tickets", TAG, response=TicketOut, response_is_list=True,
        query=TicketListQuery, problems=SCOPE + (PermissionMissing,), operation_id="listTickets",
        description=("`tickets:read_all` sees every ticket; `tickets:read_own` only those the caller requested "
                     "(neither: 403). `q` is full-text (web search syntax) over title "
                     "and description. Keyset pagination: `next_cursor` is valid only with the same sort and "
                     "filters (422 otherwise). Priority order is low < normal < high < urgent; ties by "
                     "creation time."),
    ),
    Operation("GET", "/v1/tickets/{ticket_id}", "Read a ticket", TAG, response=TicketOut,
              problems=SCOPE + (PermissionMissing, TicketNotFound), response_headers=("ETag",),
              operation_id="getTicket",
              description="Another's ticket without `tickets:read_all` answers 404."),
    Operation(
        "PATCH", "/v1/tickets/{ticket_id}", "Change a ticket", TAG, request=TicketUpdate, response=TicketOut,
        problems=SCOPE + (TicketNotFound, TicketFieldForbidden, StatusTransitionNotAllowed, EtagMismatch,
                          IfMatchRequired, IfMatchInvalid, AssigneeNotAssignable),
        params=[Param("If-Match", "header", ETAG_FORMAT, required=True, description=_IF_MATCH.description)],
        operation_id="updateTicket", request_example={"status": "in_progress", "priority": "urgent"},
        response_headers=("ETag",),
        description=("`If-Match` is required (428 without it, 412 when stale). Without `tickets:triage` only title "
                     "and description of one's own tickets may change (403 for other fields or another's "
                     "ticket). Status moves outside the contract's table: 409. The assignee must be a member "
                     "holding `tickets:read_all` (422); null unassigns."),
    ),
    Operation("DELETE", "/v1/tickets/{ticket_id}", "Delete a ticket (soft)", TAG, status=204,
              problems=SCOPE + (AdminRequired, TicketNotFound, EtagMismatch, IfMatchInvalid), params=[_IF_MATCH],
              operation_id="deleteTicket",
              description="`tickets:delete`. The ticket answers 404 everywhere afterwards. `If-Match` is optional."),
    Operation("POST", "/v1/tickets/{ticket_id}/restore", "Restore a deleted ticket", TAG, response=TicketOut,
              problems=SCOPE + (AdminRequired, TicketNotFound, TicketNotDeleted), response_headers=("ETag",),
              operation_id="restoreTicket",
              description="`tickets:delete`; 409 when the ticket is not deleted."),
    Operation("POST", "/v1/tickets/{ticket_id}/comments", "Comment on a ticket", TAG, status=201,
              request=CommentCreate, response=CommentOut,
              problems=SCOPE + (PermissionMissing, TicketNotFound, InternalCommentForbidden),
              operation_id="createComment", request_example={"body": "Restarted it; please check.", "internal": False},
              description="`comments:create` on a ticket one can see; "
                          "`internal: true` needs `comments:internal` (403)."),
    Operation("GET", "/v1/tickets/{ticket_id}/comments", "List a ticket's comments", TAG, response=CommentOut,
              response_is_list=True, query=CommentListQuery, problems=SCOPE + (PermissionMissing, TicketNotFound),
              operation_id="listComments",
              description="Oldest first. Internal comments only with `comments:internal`."),
]
