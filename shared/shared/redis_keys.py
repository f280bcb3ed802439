"""Redis key formats shared across processes: defined here once, imported by the writer and
the reader alike (shared/README.md, "Revocation keys in Redis")."""
from __future__ import annotations


def session_revoked(session_id) -> str:
    """``1`` while every access token of this session is revoked."""
    return f"rv:sid:{session_id}"


def user_org_stale(user_id, organization_id) -> str:
    """Epoch ms: this user's tokens for this organization issued before it are stale."""
    return f"rv:ut:{user_id}:{organization_id}"


def org_stale(organization_id) -> str:
    """Epoch ms: every token for this organization issued before it is stale."""
    return f"rv:t:{organization_id}"


def rate_user(user_id) -> str:
    """The gateway's fixed-window request counter of one user."""
    return f"rl:u:{user_id}"


def rate_client(client_ip: str) -> str:
    """The gateway's fixed-window request counter of one client address (routes without a token)."""
    return f"rl:ip:{client_ip}"


def role_stale(organization_id, role_name: str) -> str:
    """Epoch ms: tokens of this organization carrying this custom role (the token's ``role``
    claim) issued before it are stale; set when the role's permissions change, or it is
    renamed or deleted."""
    return f"rv:r:{organization_id}:{role_name}"
