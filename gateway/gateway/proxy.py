"""Forwarding to upstream pools (round-robin over replicas)."""
from __future__ import annotations

import asyncio
import itertools

import aiohttp
from aiohttp import web

from shared.errors import BadGateway, GatewayTimeout
from shared.web import REQUEST_ID_HEADER, request_id_of

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}


class Upstream:
    def __init__(self, name: str, urls: list[str]):
        self.name, self.urls = name, urls
        self._rr = itertools.cycle(range(len(urls)))

    def pick(self) -> str:
        return self.urls[next(self._rr)]


async def forward(request: web.Request, upstream: Upstream, session: aiohttp.ClientSession) -> web.StreamResponse:
    base = upstream.pick()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    headers[REQUEST_ID_HEADER] = request_id_of(request)
    try:
        async with session.request(request.method, base + request.rel_url.raw_path_qs, headers=headers,
                                   data=request.content if request.body_exists else None,
                                   allow_redirects=False) as up:
            resp = web.StreamResponse(status=up.status)
            for k, v in up.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    resp.headers.add(k, v)
            resp.headers[REQUEST_ID_HEADER] = request_id_of(request)
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp
    except asyncio.TimeoutError:
        raise GatewayTimeout(f"The {upstream.name} service did not answer in time.") from None
    except aiohttp.ClientError:
        raise BadGateway(f"The {upstream.name} service could not be reached.") from None
