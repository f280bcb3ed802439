"""Access tokens (signed JWTs) and refresh tokens (opaque, stored only as hashes)."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..keys.ring import KeyRing
from .schemas import TokensOut

_SEAL_LABEL = b"auth-service/refresh-successor-seal/v1"


class AccessTokenIssuer:
    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, ttl_s: int):
        self.keyring, self.issuer, self.audience, self.ttl_s = keyring, issuer, audience, ttl_s

    def mint(self, *, user_id: UUID, session_id: UUID, organization_id: UUID | None, role: str | None,
             permissions: Iterable[str] | None = None, as_of_ms: int | None = None) -> str:
        """``as_of_ms``: PostgreSQL's clock taken before the membership behind ``organization_id``
        and ``role`` was read; it becomes ``iat_ms``, the time the gateway compares with the
        revocation marks (auth_service.revocation). Without it, the minting moment."""
        now = time.time()
        iat = int(now)
        claims = {"iss": self.issuer, "aud": self.audience, "sub": str(user_id), "sid": str(session_id),
                  "iat": iat, "iat_ms": int(now * 1000) if as_of_ms is None else int(as_of_ms),
                  "exp": iat + self.ttl_s, "jti": uuid.uuid4().hex}
        if organization_id is not None:
            claims["tid"] = str(organization_id)
            claims["role"] = role
            if permissions is not None:
                # shared.auth.principal_from_claims: without it, the built-in role's set applies.
                claims["perms"] = sorted(permissions)
        return self.keyring.sign(claims)

    def mint_scoped(self, *, subject: UUID, session_id: UUID, organization_id: UUID, role: str | None,
                    permissions: Iterable[str], ttl_s: int, extra: dict[str, Any] | None = None) -> str:
        """An access token for one organization with an explicit permission set and lifetime:
        an API key's (``akid``) and platform staff's read-only access (``staff``)."""
        now = time.time()
        iat = int(now)
        claims = {"iss": self.issuer, "aud": self.audience, "sub": str(subject), "sid": str(session_id),
                  "iat": iat, "iat_ms": int(now * 1000), "exp": iat + ttl_s, "jti": uuid.uuid4().hex,
                  "tid": str(organization_id), "perms": sorted(permissions), **(extra or {})}
        if role is not None:
            claims["role"] = role
        return self.keyring.sign(claims)

    def tokens(self, *, user_id: UUID, session_id: UUID, organization_id: UUID | None, role: str | None,
               refresh_token: str, permissions: Iterable[str] | None = None,
               as_of_ms: int | None = None) -> TokensOut:
        return TokensOut(access_token=self.mint(user_id=user_id, session_id=session_id,
                                                organization_id=organization_id, role=role,
                                                permissions=permissions, as_of_ms=as_of_ms),
                         refresh_token=refresh_token, token_type="Bearer", expires_in=self.ttl_s)


def new_refresh_token() -> tuple[str, bytes]:
    """A 256-bit random token and the hash that is all the database ever sees of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _seal_key(spent_token: str) -> bytes:
    # Derived from the spent token's plaintext, which the database never holds: a leaked
    # database cannot open the seal, only someone presenting the spent token can.
    return hmac.new(spent_token.encode(), _SEAL_LABEL, hashlib.sha256).digest()


def seal_successor(spent_token: str, successor: str, successor_hash: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_seal_key(spent_token)).encrypt(nonce, successor.encode(), successor_hash)


def open_successor(spent_token: str, sealed: bytes, successor_hash: bytes) -> str | None:
    try:
        plain = AESGCM(_seal_key(spent_token)).decrypt(sealed[:12], sealed[12:], successor_hash).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError):
        return None
    return plain if hmac.compare_digest(hash_refresh_token(plain), successor_hash) else None
