"""Expected failures of the ticket routes: problem types of the shared registry (shared.errors),
re-exported under the names this package uses."""
from shared.errors import (
                           AdminRequired,
                           AssigneeNotAssignable,
                           IdempotencyKeyReused,
                           IfMatchInvalid,
                           IfMatchRequired,
                           InvalidIdempotencyKey,
                           OrganizationNotFound,
                           StatusMoveNotAllowed,
                           TicketChangeForbidden,
                           TicketNotDeleted,
                           TicketNotFound,
                           TicketVersionMismatch,
)

__all__ = ["AdminRequired", "AssigneeNotAssignable", "IdempotencyKeyReused", "IfMatchInvalid", "IfMatchRequired",
           "InvalidIdempotencyKey", "OrganizationNotFound", "StatusMoveNotAllowed",
           "TicketChangeForbidden", "TicketNotDeleted", "TicketNotFound", "TicketVersionMismatch"]
