"""``invitation.accepted`` from tenant-service: the invitation was sent to that address, and
the account that accepted it has that address, so the email is proven (API.md: "Accepting an
invitation also verifies the email it was sent to")."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg

from shared.messaging import Event

from ..account.service import AccountService
from ..context import RequestInfo

log = logging.getLogger(__name__)

GROUP = "auth-service.invitations"
BINDINGS = ["invitation.accepted"]


def invitation_handler(accounts: AccountService) -> Callable[[asyncpg.Connection, Event], Awaitable[None]]:
    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        if event.type != "invitation.accepted":
            return
        try:
            user_id = UUID(str(event.data["user_id"]))
            email = str(event.data["email"])
        except (KeyError, ValueError, TypeError):
            log.error("event without the fields it needs skipped", extra={"event_id": str(event.id),
                                                                          "event_type": event.type})
            return
        info = RequestInfo(request_id=event.request_id or "", ip=event.actor.ip, user_agent=None)
        # Idempotent: an address already verified (or since changed) is left as it is.
        await accounts.verify_from_invitation(conn, user_id=user_id, email=email, info=info)
    return handle
