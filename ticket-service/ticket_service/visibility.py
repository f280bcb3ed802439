"""Which tickets a caller sees (the rule every ticket and comment route applies)."""
from __future__ import annotations

from uuid import UUID

from shared.auth import Principal
from shared.permissions import TICKETS_READ_ALL, TICKETS_READ_OWN


def sees(principal: Principal, requester_id: UUID) -> bool:
    """Every ticket with tickets:read_all; one's own with tickets:read_own. Another's ticket
    does not exist for the caller (404, never 403)."""
    return principal.has_permission(TICKETS_READ_ALL) or (
        principal.has_permission(TICKETS_READ_OWN) and requester_id == principal.user_id)
