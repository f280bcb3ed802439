"""``invitation.accepted`` from tenant-service: the invitation was sent to that address, and
the account that accepted it has that address, so the email is proven (API.md: "Accepting an
invitation also verifies the email it was sent to")."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from shared.context import RequestContext
from shared.messaging import Event, event_data
from shared.messaging.catalog import InvitationAccepted

from ..account.service import AccountService

GROUP = "auth-service.invitations"
BINDINGS = ["invitation.accepted"]


def invitation_handler(accounts: AccountService) -> Callable[[asyncpg.Connection, Event], Awaitable[None]]:
    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        if event.type != "invitation.accepted":
            return
        data = event_data(event, InvitationAccepted)  # MalformedEvent: dead-lettered (shared.messaging.poison)
        info = RequestContext(request_id=event.request_id, ip=event.actor.ip)
        # Idempotent: an address already verified (or since changed) is left as it is.
        await accounts.verify_from_invitation(conn, user_id=data.user_id, email=data.email, info=info)
    return handle
