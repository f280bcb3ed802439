"""API keys at the gateway (``Authorization: Bearer sk_...``).

A key is resolved by auth-service (``POST /internal/api-keys/resolve``, X-Internal-Token) into a
short-lived access token signed like every user token and carrying ``akid``, ``tid`` and
``perms``. The gateway verifies that token with the same verifier as any other, remembers the
answer keyed by the key's SHA-256 (never the key itself) until shortly before the token expires,
and forwards the token upstream in place of the key: services see the identity they already
trust. Per request a key therefore costs what a JWT costs, one dictionary lookup; revocation
is the ``rv:ak`` flag in the same Redis script as every other revocation check, so a deleted
key stops working at the next request, whatever is cached.

``last_used_at`` is never written on the request path: each request notes the time in memory
and a background task reports the keys used to auth-service once per ``usage_flush_s``.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import aiohttp

from shared.auth import INTERNAL_TOKEN_HEADER, TokenVerifier
from shared.errors import InvalidApiKey as InvalidApiKeyError
from shared.errors import ServiceUnavailable
from shared.tasks import cancel_and_wait

from .auth import Caller
from .upstreams import UpstreamPool

log = logging.getLogger("gateway.api_keys")

RESOLVE_PATH = "/internal/api-keys/resolve"
USAGE_PATH = "/internal/api-keys/usage"
# A cached resolution is refreshed this long before its token expires, so the token forwarded
# upstream is never about to expire in flight.
REFRESH_MARGIN_S = 30
# Unknown keys are remembered briefly, so a client repeating a wrong key does not turn into a
# call to auth-service per request (a real key cannot be "unknown" before it exists: keys are
# random, so this never hides a new key).
NEGATIVE_TTL_S = 5.0


class InvalidApiKey(InvalidApiKeyError):
    def __init__(self) -> None:
        super().__init__("The API key is invalid, expired or revoked.")


class ApiKeyResolver:
    def __init__(self, verifier: TokenVerifier, pool: UpstreamPool, session: aiohttp.ClientSession, *,
                 internal_token: str, timeout_s: float = 2.0, max_entries: int = 10000):
        self.verifier, self.pool, self.session = verifier, pool, session
        self.internal_token, self.timeout = internal_token, aiohttp.ClientTimeout(total=timeout_s)
        self.max_entries = max_entries
        self._entries: dict[str, Caller] = {}
        self._unknown: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[Caller]] = {}
        self.used: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def caller(self, key: str) -> Caller:
        # Keyed by the key itself, like verified tokens in shared.auth.TokenCache: the key is a
        # bearer secret the process holds for the request anyway, and hashing it first cost this
        # lookup more than the JWT path's (gateway/bench/RESULTS.md, API key against JWT).
        entry = self._entries.get(key)
        now = time.time()
        if entry is not None and entry.exp - REFRESH_MARGIN_S > now:
            self._note_use(entry, now)
            return entry
        caller = await self._resolve_once(key, now)
        self._note_use(caller, now)
        return caller

    def _note_use(self, caller: Caller, now: float) -> None:
        # Every caller here has a key id: _resolve refuses a token without one.
        if caller.api_key_id is not None:
            self.used[caller.api_key_id] = now

    async def _resolve_once(self, key: str, now: float) -> Caller:
        until = self._unknown.get(key)
        if until is not None:
            if until > now:
                raise InvalidApiKey()
            del self._unknown[key]
        # One resolution per key at a time: a burst of requests with a new key waits for one
        # answer instead of each asking auth-service.
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            caller = await self._resolve(key)
        except Exception as exc:
            if isinstance(exc, InvalidApiKey):
                if len(self._unknown) >= self.max_entries:
                    self._unknown.clear()
                self._unknown[key] = time.time() + NEGATIVE_TTL_S
            fut.set_exception(exc)
            fut.exception()  # retrieved here: waiters re-raise it, none is needed
            raise
        except BaseException:
            fut.cancel()
            raise
        else:
            fut.set_result(caller)
            if self.max_entries > 0:
                while len(self._entries) >= self.max_entries:
                    del self._entries[next(iter(self._entries))]
                self._entries[key] = caller
            return caller
        finally:
            del self._inflight[key]

    async def _resolve(self, key: str) -> Caller:
        status, body = await self._call(RESOLVE_PATH, {"key": key})
        if status == 404:
            raise InvalidApiKey()
        token = body.get("access_token") if status == 200 and isinstance(body, dict) else None
        if not isinstance(token, str):
            log.warning("unexpected answer resolving an API key", extra={"status": status})
            raise ServiceUnavailable("API keys cannot be checked right now; try again shortly.",
                                     headers={"Retry-After": "1"})
        principal = await self.verifier.verify(token)
        if principal.api_key_id is None:
            raise InvalidApiKey()
        return Caller.of(principal, forward_token=token)

    async def _call(self, path: str, payload: dict[str, object]) -> tuple[int, object]:
        headers = {INTERNAL_TOKEN_HEADER: self.internal_token, "Content-Type": "application/json"}
        data = json.dumps(payload)
        for replica in self.pool.candidates():
            try:
                async with self.session.post(replica.base + path, data=data, headers=headers,
                                             timeout=self.timeout) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
                self.pool.eject(replica)
                continue
            except (TimeoutError, aiohttp.ClientError):
                break
            try:
                return status, (json.loads(raw) if raw else None)
            except ValueError:
                break
        raise ServiceUnavailable("API keys cannot be checked right now; try again shortly.",
                                 headers={"Retry-After": "1"})

    async def flush_usage(self) -> int:
        """Report the keys used since the last report (``last_used_at``); the notes are kept for
        the next round when auth-service does not answer."""
        if not self.used:
            return 0
        used, self.used = self.used, {}
        items = [{"id": key_id, "used_at": int(at * 1000)} for key_id, at in used.items()]
        try:
            status, _ = await self._call(USAGE_PATH, {"items": items})
        except ServiceUnavailable:
            status = 503
        if status != 204:
            for key_id, at in used.items():
                self.used[key_id] = max(at, self.used.get(key_id, 0.0))
            return 0
        return len(items)


async def flush_usage_forever(resolver: ApiKeyResolver, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await resolver.flush_usage()
        except Exception:  # a bad round must not end the loop
            log.exception("reporting API key usage failed")


async def stop(task: asyncio.Task[None] | None, resolver: ApiKeyResolver) -> None:
    await cancel_and_wait(task)
    with contextlib.suppress(Exception):
        await resolver.flush_usage()  # what was used since the last round is not lost on shutdown
