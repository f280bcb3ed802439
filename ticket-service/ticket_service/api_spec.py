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
        description=("Needs a token scoped to an organization (403 otherwise). The caller becomes the requester; "
                     "`assignee_id` needs agent or above (403) and must name an agent+ member (422). "
                     "`number` counts from 1 within the organization."),
    ),
    Operation(
        "GET", "/v1/tickets", "List and search tickets", TAG, response=TicketOut, response_is_list=True,
        query=TicketListQuery, errors=(403, 422),
        description=("Members see only tickets they requested. `q` is full-text (web search syntax) over title "
                     "and description. Keyset pagination: `next_cursor` is valid only with the same sort and "
                     "filters (422 otherwise). Priority order is low < normal < high < urgent; ties by "
                     "creation time."),
    ),
    Operation("GET", "/v1/tickets/{ticket_id}", "Read a ticket", TAG, response=TicketOut, errors=(403, 404),
              response_headers=("ETag",)),
    Operation(
        "PATCH", "/v1/tickets/{ticket_id}", "Change a ticket", TAG, request=TicketUpdate, response=TicketOut,
        errors=(403, 404, 409, 412, 422, 428), params=[Param("If-Match", "header", required=True,
                                                            description=_IF_MATCH.description)],
        response_headers=("ETag",),
        description=("`If-Match` is required (428 without it, 412 when stale). Members may change only title and "
                     "description of their own tickets (403 for other fields). Status moves outside the "
                     "contract's table: 409. The assignee must be an agent+ member (422); null unassigns."),
    ),
    Operation("DELETE", "/v1/tickets/{ticket_id}", "Delete a ticket (soft)", TAG, status=204,
              errors=(403, 404, 412), params=[_IF_MATCH],
              description="Admin or owner. The ticket answers 404 everywhere afterwards. `If-Match` is optional."),
    Operation("POST", "/v1/tickets/{ticket_id}/restore", "Restore a deleted ticket", TAG, response=TicketOut,
              errors=(403, 404, 409), response_headers=("ETag",),
              description="Admin or owner; 409 when the ticket is not deleted."),
    Operation("POST", "/v1/tickets/{ticket_id}/comments", "Comment on a ticket", TAG, status=201,
              request=CommentCreate, response=CommentOut, errors=(403, 404),
              description="`internal: true` needs agent or above (403). Members may comment on their own tickets."),
    Operation("GET", "/v1/tickets/{ticket_id}/comments", "List a ticket's comments", TAG, response=CommentOut,
              response_is_list=True, query=CommentListQuery, errors=(403, 404, 422),
              description="Oldest first. Members never see internal comments."),
]
