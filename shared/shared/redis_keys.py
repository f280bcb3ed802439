"""Redis key formats shared across processes: defined here once, imported by the writer and
the reader alike (shared/README.md, "Revocation keys in Redis")."""
from __future__ import annotations

from uuid import UUID


def session_revoked(session_id: UUID | str) -> str:
    """``1`` while every access token of this session is revoked."""
    return f"rv:sid:{session_id}"


def user_org_stale(user_id: UUID | str, organization_id: UUID | str) -> str:
    """Epoch ms: this user's tokens for this organization issued before it are stale."""
    return f"rv:ut:{user_id}:{organization_id}"


def org_stale(organization_id: UUID | str) -> str:
    """Epoch ms: every token for this organization issued before it is stale."""
    return f"rv:t:{organization_id}"


def rate_user(user_id: UUID | str) -> str:
    """The gateway's fixed-window request counter of one user."""
    return f"rl:u:{user_id}"


def rate_client(client_ip: str) -> str:
    """The gateway's fixed-window request counter of one client address (routes without a token)."""
    return f"rl:ip:{client_ip}"


def role_stale(organization_id: UUID | str, role_name: str) -> str:
    """Epoch ms: tokens of this organization carrying this custom role (the token's ``role``
    claim) issued before it are stale; set when the role's permissions change, or it is
    renamed or deleted."""
    return f"rv:r:{organization_id}:{role_name}"


def api_key_revoked(api_key_id: UUID | str) -> str:
    """``1`` while every access token minted for this API key is revoked (the key was deleted)."""
    return f"rv:ak:{api_key_id}"


def staff_stale(user_id: UUID | str) -> str:
    """Epoch ms: this user's staff-access tokens issued before it are stale (staff revoked)."""
    return f"rv:st:{user_id}"


def rate_api_key(api_key_id: UUID | str) -> str:
    """The gateway's fixed-window request counter of one API key."""
    return f"rl:ak:{api_key_id}"


# Revocation rebuild (auth-service, issue 11): PostgreSQL holds every mark; after Redis comes
# back empty they are written again, and this key is written last.
REVOCATION_READY = "rv:ready"
"""Present once every persisted revocation mark is in this Redis; absent (a Redis that lost its
data) the gateway treats revocation as unknown: the same policy as Redis being down."""

REVOCATION_EPOCH = "rv:epoch"
"""Identifies one Redis lifetime for the rebuild: the ready key is only written when this key
still holds the value the rebuild started with (a Redis restarted meanwhile has lost it)."""


def rate_bad_token(client_ip: str) -> str:
    """The gateway's fixed-window counter of failed token verifications of one client address."""
    return f"rl:bt:{client_ip}"


def login_failures_account(account_digest: str) -> str:
    """Failed logins of one account (the hash of its normalised email), from any address."""
    return f"auth:lf:a:{account_digest}"


def login_failures_account_address(account_digest: str, client_ip: str) -> str:
    """Failed logins of one account from one client address."""
    return f"auth:lf:aip:{account_digest}:{client_ip}"


def login_failures_address(client_ip: str) -> str:
    """Failed logins from one client address, any account."""
    return f"auth:lf:ip:{client_ip}"


def password_reset_requests_email(email_digest: str) -> str:
    """Password-reset requests for one email (the hash of the normalised address, whether or not
    an account has it)."""
    return f"auth:pr:e:{email_digest}"


def password_reset_requests_address(client_ip: str) -> str:
    """Password-reset requests from one client address."""
    return f"auth:pr:ip:{client_ip}"


def verification_requests_user(user_id: UUID | str) -> str:
    """Verification emails requested by one user."""
    return f"auth:ve:u:{user_id}"
