"""Bearer tokens at the gateway: verified once with the shared verifier (JWKS, allowlisted
algorithms, iss/aud/exp/nbf), then remembered until they expire (shared.auth.TokenCache of
Callers, ``token_cache``), so the per-request cost of an authenticated call is one dictionary
lookup. API keys (``sk_...``) are resolved by gateway.api_keys into the same Caller."""
from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from shared import redis_keys
from shared.auth import Principal, TokenCache, TokenVerifier
from shared.errors import InvalidApiKey, TokenInvalid, TokenMissing
from shared.permissions import builtin_permissions


@dataclass(frozen=True, slots=True)
class Caller:
    """What the gateway needs of a verified token, with its Redis keys prepared once."""
    user_id: str
    session_id: str
    tenant_id: str | None
    iat_ms: int
    exp: int
    rate_key: str
    # First a flag (rv:sid, or rv:ak for an API key), then epoch-ms marks (rv:ut, rv:t; rv:r when
    # the token carries a custom role; rv:st for staff access).
    revocation_keys: tuple[str, ...]
    api_key_id: str | None = None
    staff: bool = False
    # For an API key: the short-lived access token auth-service minted for it, forwarded
    # upstream in place of the key (services verify it like any user token).
    forward_token: str | None = None

    @classmethod
    def of(cls, principal: Principal, *, forward_token: str | None = None) -> Caller:
        user, sid = str(principal.user_id), str(principal.session_id)
        tid = str(principal.tenant_id) if principal.tenant_id else None
        try:
            iat_ms = int(principal.claims.get("iat_ms", principal.iat * 1000))
        except (TypeError, ValueError):
            raise TokenInvalid() from None
        if principal.api_key_id is not None:
            if forward_token is None or tid is None:
                # A key's token only ever comes from the key resolution, never from a client.
                raise TokenInvalid("The access token is not acceptable.")
            akid = str(principal.api_key_id)
            return cls(user_id=user, session_id=sid, tenant_id=tid, iat_ms=iat_ms, exp=principal.exp,
                       rate_key=redis_keys.rate_api_key(akid),
                       revocation_keys=(redis_keys.api_key_revoked(akid), redis_keys.org_stale(tid)),
                       api_key_id=akid, forward_token=forward_token)
        keys: tuple[str, ...] = (redis_keys.session_revoked(sid),)
        if tid:
            keys += (redis_keys.user_org_stale(user, tid), redis_keys.org_stale(tid))
            # A custom role's permissions can change (built-in ones never do): its mark, raised
            # on role.updated / role.deleted, makes every token carrying it stale at once.
            if principal.role and builtin_permissions(principal.role) is None:
                keys += (redis_keys.role_stale(tid, principal.role),)
        if principal.staff:
            if tid is None:
                raise TokenInvalid("The access token is not acceptable.")
            keys += (redis_keys.staff_stale(user),)
        return cls(user_id=user, session_id=sid, tenant_id=tid, iat_ms=iat_ms, exp=principal.exp,
                   rate_key=redis_keys.rate_user(user), revocation_keys=keys, staff=principal.staff)


def token_cache(verifier: TokenVerifier, *, max_entries: int) -> TokenCache[Caller]:
    """Verified tokens as Callers (Redis keys prepared once), until they expire. Revocation is
    never cached: Guard.check asks Redis on every request."""
    return TokenCache(verifier, Caller.of, max_entries=max_entries)


API_KEY_PREFIX = "sk_"
# auth-service issues sk_ + 43 base64url characters; anything else is refused here without a
# call to it.
_API_KEY_SHAPE = re.compile(r"sk_[A-Za-z0-9_-]{40,100}")


def bearer(request: web.Request) -> str:
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise TokenMissing()
    return token


def check_api_key_shape(token: str) -> None:
    if _API_KEY_SHAPE.fullmatch(token) is None:
        raise InvalidApiKey("The API key is malformed.")


def check_shape(token: str) -> None:
    # A JWT is three base64url parts; anything else (a refresh token, garbage) is refused
    # without touching the verifier.
    if token.count(".") != 2 or len(token) > 8192:
        raise TokenInvalid("The access token is malformed.")
