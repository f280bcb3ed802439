"""Forwarding a request to an upstream pool: trusted headers only, the body streamed under the
size limit, failover for idempotent methods on connection failure, the answer streamed back."""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import Counter, Gauge

from shared.auth import CLIENT_IP_HEADER, INTERNAL_TOKEN_HEADER
from shared.errors import BadGateway, GatewayTimeout, PayloadTooLarge, ServiceUnavailable
from shared.web import REQUEST_ID_HEADER

from .upstreams import UpstreamPool

log = logging.getLogger("gateway.proxy")

UPSTREAM_ERRORS = Counter("gateway_upstream_errors_total", "Failed upstream attempts", ["pool", "kind"])
UPSTREAM_READY = Gauge("gateway_upstream_ready_replicas", "Replicas of a pool whose readiness answered 200 "
                       "at the last readiness check", ["pool"], multiprocess_mode="livemax")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
                        "proxy-connection"})
# Identity and forwarding headers only the gateway may set: whatever a client sends under these
# names is dropped (exact names and prefixes, compared lower-case).
UNTRUSTED_EXACT = frozenset({"forwarded", "via", "x-real-ip", "x-client-ip", "x-internal-token",
                             "x-request-id", "x-cluster-client-ip", "true-client-ip", "cf-connecting-ip",
                             "fastly-client-ip", "x-original-url", "x-rewrite-url", "x-http-method-override",
                             "x-http-method", "x-method-override",
                             # The gateway answered "100 Continue" itself; the upstream gets the body.
                             "expect"})
UNTRUSTED_PREFIXES = ("x-forwarded-", "x-user", "x-tenant", "x-org", "x-role", "x-auth", "x-internal",
                      "x-principal", "x-remote", "x-original-", "x-real-", "x-client-", "x-envoy-")
RESPONSE_DROP = HOP_BY_HOP | {"server", "date", INTERNAL_TOKEN_HEADER.lower()}


def _untrusted(name: str) -> bool:
    low = name.lower()
    return low in HOP_BY_HOP or low in UNTRUSTED_EXACT or low.startswith(UNTRUSTED_PREFIXES)


def upstream_headers(request: web.Request, *, request_id: str, client_ip: str,
                     internal_token: str) -> CIMultiDict[str]:
    connection_listed = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        if not _untrusted(name) and name.lower() not in connection_listed:
            out.add(name, value)
    if request.content_length is not None and request.body_exists:
        out["Content-Length"] = str(request.content_length)
    out[REQUEST_ID_HEADER] = request_id
    out[CLIENT_IP_HEADER] = client_ip
    out[INTERNAL_TOKEN_HEADER] = internal_token
    return out


class TrustedProxies:
    """Which peers may tell the gateway the client address (X-Forwarded-For)."""

    def __init__(self, cidrs: list[str]):
        self.networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def _trusted(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client_ip(self, request: web.Request) -> str:
        peer = request.remote or "unknown"
        if not self.networks or not self._trusted(peer):
            return peer
        # Walk the chain from the nearest hop outwards; the first address that is not one of our
        # proxies is the client (anything further left was written by the client itself).
        hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",")]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer
            if not self._trusted(hop):
                return hop
        return peer


class LimitedBody:
    """The request body streamed upstream, refused once it passes the limit (chunked bodies
    have no Content-Length to check in advance)."""

    def __init__(self, content: aiohttp.StreamReader, limit: int):
        self.content, self.limit = content, limit
        self.started = False
        self.too_large = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        seen = 0
        async for chunk in self.content.iter_chunked(65536):
            seen += len(chunk)
            if seen > self.limit:
                self.too_large = True
                raise PayloadTooLarge(f"The body may be at most {self.limit} bytes.")
            yield chunk


def _is_connect_failure(exc: BaseException) -> bool:
    # Refused, unreachable, or no TCP connection within the connect timeout: the request never
    # reached the replica.
    return isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))


async def forward(request: web.Request, pool: UpstreamPool, session: aiohttp.ClientSession, *,
                  headers: CIMultiDict[str], max_body: int, buffer_max: int,
                  extra_headers: dict[str, str]) -> web.StreamResponse:
    method = request.method
    body = LimitedBody(request.content, max_body) if request.body_exists else None
    candidates = pool.candidates()
    if not candidates:
        UPSTREAM_ERRORS.labels(pool.name, "no_replica").inc()
        raise ServiceUnavailable(f"No {pool.name} replica is available; try again shortly.",
                                 headers={"Retry-After": "1"})
    path_qs = request.rel_url.raw_path_qs
    retry_allowed = method in IDEMPOTENT
    for attempt, replica in enumerate(candidates):
        try:
            # The response is entered by hand: a small answer is read and the upstream connection
            # released before the client is written to.
            up = await session.request(method, replica.base + path_qs, headers=headers, data=body,
                                       allow_redirects=False, auto_decompress=False)
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                pool.eject(replica)
                UPSTREAM_ERRORS.labels(pool.name, "connect").inc()
                # No connection means the request never reached the replica: any method may
                # try the next one (a pod gone between two re-resolutions costs nothing).
                if not (body and body.started) and attempt + 1 < len(candidates):
                    continue
                raise BadGateway(f"The {pool.name} service could not be reached.") from None
            if body is not None and body.too_large:
                raise PayloadTooLarge(f"The body may be at most {max_body} bytes.") from None
            UPSTREAM_ERRORS.labels(pool.name, "timeout").inc()
            raise GatewayTimeout(f"The {pool.name} service did not answer in time.") from None
        except aiohttp.ClientError as exc:
            if body is not None and body.too_large:
                raise PayloadTooLarge(f"The body may be at most {max_body} bytes.") from None
            if _is_connect_failure(exc):
                pool.eject(replica)
                UPSTREAM_ERRORS.labels(pool.name, "connect").inc()
                # No connection means the request never reached the replica: any method may
                # try the next one (a pod gone between two re-resolutions costs nothing).
                if not (body and body.started) and attempt + 1 < len(candidates):
                    continue
            else:
                UPSTREAM_ERRORS.labels(pool.name, "disconnect").inc()
                # A kept-alive connection the replica closed (restart, scale-down) fails on reuse;
                # for an idempotent request without a body that is still a connection failure.
                if (retry_allowed and body is None and attempt + 1 < len(candidates)
                        and isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError))):
                    continue
            log.warning("upstream request failed", extra={"pool": pool.name, "replica": replica.base,
                                                           "error": type(exc).__name__})
            raise BadGateway(f"The {pool.name} service could not be reached.") from None
        except PayloadTooLarge:
            raise
        try:
            return await _relay(request, up, pool, buffer_max, extra_headers)
        finally:
            up.release()
    raise BadGateway(f"The {pool.name} service could not be reached.")  # pragma: no cover


async def _relay(request: web.Request, up: aiohttp.ClientResponse, pool: UpstreamPool, buffer_max: int,
                 extra_headers: dict[str, str]) -> web.StreamResponse:
    # CORS is the gateway's decision alone: an upstream's Access-Control-* headers never pass.
    headers = CIMultiDict((k, v) for k, v in up.headers.items()
                          if k.lower() not in RESPONSE_DROP and not k[:15].lower() == "access-control-")
    headers.update(extra_headers)
    length = up.content_length
    no_body = request.method == "HEAD" or up.status in (204, 304) or 100 <= up.status < 200
    if not no_body and length is not None and length <= buffer_max:
        try:
            data = await up.read()
        except TimeoutError:
            UPSTREAM_ERRORS.labels(pool.name, "timeout").inc()
            raise GatewayTimeout(f"The {pool.name} service did not answer in time.") from None
        except aiohttp.ClientError:
            UPSTREAM_ERRORS.labels(pool.name, "disconnect").inc()
            raise BadGateway(f"The {pool.name} service closed the connection.") from None
        return web.Response(status=up.status, reason=up.reason, body=data, headers=headers)
    resp = web.StreamResponse(status=up.status, reason=up.reason, headers=headers)
    if length is not None:
        resp.content_length = length
    await resp.prepare(request)
    if no_body:
        await resp.write_eof()
        return resp
    try:
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
    except (TimeoutError, aiohttp.ClientError) as exc:
        # The status line is gone already: the only honest signal left is a cut connection.
        UPSTREAM_ERRORS.labels(pool.name, "stream").inc()
        log.warning("upstream failed while streaming", extra={"pool": pool.name, "error": type(exc).__name__})
        if request.transport is not None:
            request.transport.abort()
        return resp
    except ConnectionResetError:
        return resp  # the client went away
    await resp.write_eof()
    return resp
