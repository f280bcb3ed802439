"""The grant rules of the role table (API.md, "Roles"), in one place."""
from __future__ import annotations

from shared.auth import ROLE_RANK

ROLES = ("owner", "admin", "agent", "member")


def rank(role: str | None) -> int:
    return ROLE_RANK.get(role or "", 0)


def weaker(a: str | None, b: str | None) -> str | None:
    """The lower of two roles (None when either is missing)."""
    if a is None or b is None:
        return None
    return a if rank(a) <= rank(b) else b


def can_grant(actor_role: str, role: str) -> bool:
    """May ``actor_role`` give someone ``role`` (by invitation or role change)?
    Admins hand out roles up to agent; only owners grant admin or owner."""
    if actor_role == "owner":
        return True
    return actor_role == "admin" and rank(role) <= rank("agent")


def can_manage(actor_role: str, target_role: str) -> bool:
    """May ``actor_role`` change or remove a member who currently holds ``target_role``?
    Admins manage members below admin; owners manage everyone."""
    if actor_role == "owner":
        return True
    return actor_role == "admin" and rank(target_role) < rank("admin")
