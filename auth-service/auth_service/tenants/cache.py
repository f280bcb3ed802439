"""What tenant-service last answered about a user's memberships, kept for sign-ins (table
``membership_cache``, migration ``membership_cache``).

A sign-in asks tenant-service which organizations the user belongs to. The answer changes
rarely, so it is kept with ``as_of_ms``: PostgreSQL's clock taken BEFORE the question was
asked, the same clock and the same rule as every token's ``iat_ms`` (auth_service.revocation).
A sign-in may answer from the kept list instead of asking again, and then mints its access
token with ``iat_ms`` = the list's ``as_of_ms``: a token made from a kept list is exactly as old
as the list, so a change that made the list wrong (a member removed, a role changed or edited, an
organization deleted) has a revocation mark newer than the token, and the gateway refuses it as
it refuses every token minted before that change.

The list is used only when all of these hold (the sign-in's one lookup statement checks the
first two, ``CACHED_MEMBERSHIPS``):

* it is younger than ``AUTH_MEMBERSHIP_CACHE_TTL_S``, at most the access-token lifetime, so at
  most the life of a revocation mark (``revocation_ttl_s``): a mark that could make it wrong
  still exists;
* no revocation mark it names (``mark_keys``: the marks of its memberships, shared.redis_keys) is
  as new as it: a list a change made wrong is not used again, and the next sign-in asks anew;
* the organization the sign-in asks for, if any, is in it (a membership added since is not);
* it is not empty: lists with no membership are never kept, so a user's first membership is
  never missed (memberships added later are never the oldest, the one a sign-in without an
  organization is scoped to).

A list is kept by the statement that opens the session of the sign-in that fetched it
(``KEEP_MEMBERSHIPS``), and only replaces one asked for earlier.
"""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import orjson

from shared import redis_keys

from .client import Membership, membership_of

# Joined to the account row of a sign-in's lookup (``u``, with ``clock``: the DB clock in ms);
# $2: the list's lifetime in ms (0: never used).
CACHED_MEMBERSHIPS = (
    "LEFT JOIN LATERAL (SELECT c.memberships::text AS cached_memberships, c.as_of_ms AS cached_as_of_ms "
    "FROM membership_cache c WHERE c.user_id = u.id AND c.as_of_ms > {clock} - $2 "
    "AND NOT EXISTS (SELECT 1 FROM revocation_mark r WHERE r.key = ANY (c.mark_keys) AND r.raise_only "
    "AND r.value::bigint >= c.as_of_ms)) cached ON true")

# A CTE of the statement that opens a sign-in's session (``s``): $1 the user, $2 the list
# (jsonb; NULL: nothing to keep), $3 its mark keys, $4 its as_of_ms (placeholders renumbered by
# the caller). A list asked for earlier never replaces a newer one.
KEEP_MEMBERSHIPS = (
    "INSERT INTO membership_cache (user_id, memberships, mark_keys, as_of_ms) "
    "SELECT {user}, {memberships}::jsonb, {mark_keys}::text[], {as_of_ms} FROM s "
    "WHERE {memberships}::jsonb IS NOT NULL "
    "ON CONFLICT (user_id) DO UPDATE SET memberships = EXCLUDED.memberships, mark_keys = EXCLUDED.mark_keys, "
    "as_of_ms = EXCLUDED.as_of_ms WHERE membership_cache.as_of_ms < EXCLUDED.as_of_ms")


@dataclass(frozen=True)
class KeptMemberships:
    memberships: list[Membership]
    as_of_ms: int

    def serves(self, organization_id: UUID | None) -> bool:
        """Whether a sign-in asking for ``organization_id`` (None: the oldest membership) may use it."""
        return organization_id is None or any(m.organization_id == organization_id for m in self.memberships)


@dataclass(frozen=True)
class ToKeep:
    """The arguments of KEEP_MEMBERSHIPS: a list just fetched (None when there is nothing to keep)."""
    memberships: str | None
    mark_keys: list[str]
    as_of_ms: int

    @classmethod
    def of(cls, user_id: UUID, memberships: list[Membership], as_of_ms: int) -> ToKeep:
        if not memberships:
            return cls.nothing()
        return cls(encode(memberships), mark_keys(user_id, memberships), as_of_ms)

    @classmethod
    def nothing(cls) -> ToKeep:
        return cls(None, [], 0)


def mark_keys(user_id: UUID, memberships: list[Membership]) -> list[str]:
    """The revocation marks a token from these memberships is checked against by the gateway."""
    keys: list[str] = []
    for m in memberships:
        keys += [redis_keys.user_org_stale(user_id, m.organization_id), redis_keys.org_stale(m.organization_id),
                 redis_keys.role_stale(m.organization_id, m.role)]
    return keys


def encode(memberships: list[Membership]) -> str:
    """In the shape of tenant-service's answer, which ``membership_of`` reads back."""
    return orjson.dumps([{"organization_id": str(m.organization_id), "role": m.role,
                          "joined_at": m.joined_at.isoformat() if m.joined_at else None,
                          "permissions": list(m.permissions) if m.permissions is not None else None}
                         for m in memberships]).decode()


def decode(raw: str | None, as_of_ms: int | None) -> KeptMemberships | None:
    if raw is None or as_of_ms is None:
        return None
    return KeptMemberships([membership_of(i) for i in orjson.loads(raw)], int(as_of_ms))
