"""Typed application keys of ticket-service."""
from aiohttp import web

from shared.messaging.consumer import EventConsumer

from .comments.service import CommentService
from .tickets.service import TicketService

TICKET_SERVICE = web.AppKey("ticket_service", TicketService)
COMMENT_SERVICE = web.AppKey("comment_service", CommentService)
MEMBERSHIP_CONSUMER = web.AppKey("membership_consumer", EventConsumer)
