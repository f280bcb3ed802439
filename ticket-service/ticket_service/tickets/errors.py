"""Expected failures of the ticket routes; shared.web renders each as problem+json."""
from shared.errors import (Conflict, FieldError, Forbidden, NotFound, PreconditionFailed, PreconditionRequired,
                           ValidationFailed)


class TicketNotFound(NotFound):
    def __init__(self):
        # The same answer for a missing ticket, a deleted one and another organization's.
        super().__init__("No such ticket.")


class TicketChangeForbidden(Forbidden):
    def __init__(self, fields: list[str]):
        super().__init__(f"Your role may not change: {', '.join(sorted(fields))}.")


class IfMatchRequired(PreconditionRequired):
    def __init__(self):
        super().__init__("Send If-Match with the ticket's ETag (read it with GET first).")


class TicketVersionMismatch(PreconditionFailed):
    def __init__(self, current_etag: str):
        super().__init__("The ticket changed since you read it; read it again and retry.",
                         headers={"ETag": current_etag})


class StatusMoveNotAllowed(Conflict):
    def __init__(self, old: str, new: str):
        super().__init__(f"A ticket cannot move from {old} to {new}.")


class TicketNotDeleted(Conflict):
    def __init__(self):
        super().__init__("The ticket is not deleted.")


class AssigneeNotAssignable(ValidationFailed):
    def __init__(self):
        super().__init__("The assignee must be an agent, admin or owner of this organization.",
                         errors=[FieldError("assignee_id", "not an agent or above of this organization")])


class IdempotencyKeyReused(ValidationFailed):
    def __init__(self):
        super().__init__("This Idempotency-Key was used with a different request body.",
                         errors=[FieldError("Idempotency-Key", "already used with a different body")])


class InvalidIdempotencyKey(ValidationFailed):
    def __init__(self):
        super().__init__("The Idempotency-Key header is not valid.",
                         errors=[FieldError("Idempotency-Key", "1 to 255 visible ASCII characters")])


class InvalidCursor(ValidationFailed):
    def __init__(self, message: str = "not a cursor this API issued"):
        super().__init__("The cursor is not valid.", errors=[FieldError("cursor", message)])


class OrganizationNotFound(NotFound):
    def __init__(self):
        super().__init__("No such organization.")


class AdminRequired(Forbidden):
    def __init__(self):
        super().__init__("Deleting and restoring tickets needs the permission 'tickets:delete'.")
