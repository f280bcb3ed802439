"""Public routes of ticket-service, declared for the gateway's OpenAPI document with the same
pydantic models the handlers validate and answer with."""
from shared.openapi import Operation, Param

from .comments.schemas import CommentCreate, CommentListQuery, CommentOut
from .tickets.schemas import TicketCreate, TicketListQuery, TicketOut, TicketUpdate

TAG = "tickets"
_IF_MATCH = Param("If-Match", "header", description="The ticket's ETag, as returned by GET (or `*`).")

OPERATIONS: list[Operation] = [
    Operation(
        "POST", "/v1/tickets", "Create a ticket", TAG, status=201, request=TicketCreate, response=TicketOut,
        errors=(403, 404, 422), response_headers=("ETag", "Idempotent-Replayed"),
        params=[Param("Idempotency-Key", "header", description=(
            "1-255 visible ASCII characters, kept 24 hours per (organization, user). A repeat with the same "
            "body returns the first response (status, body, ETag) and creates nothing; with another body: 422."))],
        description=("Needs a token scoped to an organization and `tickets:create` (403 otherwise). The caller "
                     "becomes the requester; `assignee_id` needs `tickets:triage` (403) and must name a member "
                     "holding `tickets:read_all` (422). "
                     "`number` counts from 1 within the organization."),
    ),
    Operation(
        "GET", "/v1/tickets", "List and search tickets", TAG, response=TicketOut, response_is_list=True,
        query=TicketListQuery, errors=(403, 422),
        description=("`tickets:read_all` sees every ticket; `tickets:read_own` only those the caller requested "
                     "(neither: 403). `q` is full-text (web search syntax) over title "
                     "and description. Keyset pagination: `next_cursor` is valid only with the same sort and "
                     "filters (422 otherwise). Priority order is low < normal < high < urgent; ties by "
                     "creation time."),
    ),
    Operation("GET", "/v1/tickets/{ticket_id}", "Read a ticket", TAG, response=TicketOut, errors=(403, 404),
              response_headers=("ETag",),
              description="Another's ticket without `tickets:read_all` answers 404."),
    Operation(
        "PATCH", "/v1/tickets/{ticket_id}", "Change a ticket", TAG, request=TicketUpdate, response=TicketOut,
        errors=(403, 404, 409, 412, 422, 428), params=[Param("If-Match", "header", required=True,
                                                            description=_IF_MATCH.description)],
        response_headers=("ETag",),
        description=("`If-Match` is required (428 without it, 412 when stale). Without `tickets:triage` only title "
                     "and description of one's own tickets may change (403 for other fields or another's "
                     "ticket). Status moves outside the contract's table: 409. The assignee must be a member "
                     "holding `tickets:read_all` (422); null unassigns."),
    ),
    Operation("DELETE", "/v1/tickets/{ticket_id}", "Delete a ticket (soft)", TAG, status=204,
              errors=(403, 404, 412), params=[_IF_MATCH],
              description="`tickets:delete`. The ticket answers 404 everywhere afterwards. `If-Match` is optional."),
    Operation("POST", "/v1/tickets/{ticket_id}/restore", "Restore a deleted ticket", TAG, response=TicketOut,
              errors=(403, 404, 409), response_headers=("ETag",),
              description="`tickets:delete`; 409 when the ticket is not deleted."),
    Operation("POST", "/v1/tickets/{ticket_id}/comments", "Comment on a ticket", TAG, status=201,
              request=CommentCreate, response=CommentOut, errors=(403, 404),
              description="`comments:create` on a ticket one can see; `internal: true` needs `comments:internal` (403)."),
    Operation("GET", "/v1/tickets/{ticket_id}/comments", "List a ticket's comments", TAG, response=CommentOut,
              response_is_list=True, query=CommentListQuery, errors=(403, 404, 422),
              description="Oldest first. Internal comments only with `comments:internal`."),
]
