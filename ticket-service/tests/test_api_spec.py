"""Every public route is declared for the OpenAPI document, with the handlers' own models."""
from shared.openapi import build_document
from ticket_service.api_spec import OPERATIONS
from ticket_service.tickets.schemas import TicketCreate, TicketOut, TicketUpdate


def test_every_public_route_is_declared(client):
    routes = {(r.method, r.resource.canonical) for r in client.app.router.routes()
              if r.resource.canonical.startswith("/v1/") and r.method != "HEAD"}
    declared = {(op.method, op.path) for op in OPERATIONS}
    assert routes == declared


def test_document_uses_the_handler_models():
    by_key = {(op.method, op.path): op for op in OPERATIONS}
    assert by_key[("POST", "/v1/tickets")].request is TicketCreate
    assert by_key[("PATCH", "/v1/tickets/{ticket_id}")].request is TicketUpdate
    assert by_key[("GET", "/v1/tickets/{ticket_id}")].response is TicketOut
    doc = build_document(OPERATIONS, title="t", version="1")
    # Response models are named without their "Out" suffix, and a list is <Item>Page.
    assert {"TicketCreate", "Ticket", "TicketUpdate", "Comment", "TicketPage", "CommentPage"} <= set(
        doc["components"]["schemas"])
    params = {p["name"] for p in doc["paths"]["/v1/tickets"]["get"]["parameters"]}
    assert {"status", "priority", "assignee_id", "requester_id", "tag", "q", "sort", "limit", "cursor"} <= params
