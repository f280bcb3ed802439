from aiohttp import web

from .comments import handlers as comments
from .tickets import handlers as tickets


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/tickets", tickets.create_ticket)
    app.router.add_get("/v1/tickets", tickets.list_tickets)
    app.router.add_get("/v1/tickets/{ticket_id}", tickets.get_ticket)
    app.router.add_patch("/v1/tickets/{ticket_id}", tickets.update_ticket)
    app.router.add_delete("/v1/tickets/{ticket_id}", tickets.delete_ticket)
    app.router.add_post("/v1/tickets/{ticket_id}/restore", tickets.restore_ticket)
    app.router.add_post("/v1/tickets/{ticket_id}/comments", comments.create_comment)
    app.router.add_get("/v1/tickets/{ticket_id}/comments", comments.list_comments)
