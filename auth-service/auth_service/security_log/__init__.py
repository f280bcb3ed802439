"""The account security log: a user's own sign-ins, password changes and resets, email
verification, ended sessions and refresh-token reuse (GET /v1/auth/security-events)."""
from .repository import record_event

__all__ = ["record_event"]
