"""Upstream pools: replicas from configured base URLs (a host name resolving to several
addresses gives one replica per address), round-robin, and passive ejection of a replica that
refuses connections.

In Kubernetes the upstream names are headless Services: the name resolves to the ready pods'
addresses, so each pod is a replica here and ejecting one (a pod that stopped) leaves the others
serving. A pod being replaced leaves the name first (it is no longer ready) and its ``preStop``
sleep keeps it serving for longer than ``GATEWAY_RESOLVE_INTERVAL_S``, so the gateway has
stopped picking it before it closes its socket."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from yarl import URL

log = logging.getLogger("gateway.upstreams")


@dataclass(eq=False)
class Replica:
    base: str                 # "http://10.0.0.5:8083", no trailing slash
    down_until: float = 0.0

    def available(self, now: float) -> bool:
        return self.down_until <= now


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


# (host, port) -> [(family, ip)]; the system resolver unless a test supplies its own.
Resolver = Callable[[str, int], Awaitable[list[tuple[int, str]]]]


async def system_resolver(host: str, port: int) -> list[tuple[int, str]]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # An address is text for AF_INET/AF_INET6 (typeshed also allows an int, for a Python built without IPv6).
    return [(family, sockaddr[0]) for family, _, _, _, sockaddr in infos if isinstance(sockaddr[0], str)]


class UpstreamPool:
    def __init__(self, name: str, urls: list[str], *, eject_s: float = 5.0,
                 resolver: Resolver = system_resolver):
        if not urls:
            raise ValueError(f"upstream pool {name!r} has no URL")
        self.name, self.eject_s, self.resolver = name, eject_s, resolver
        self.urls = [URL(u.rstrip("/")) for u in urls]
        self._resolved: dict[str, list[Replica]] = {str(u): [Replica(str(u))] for u in self.urls}
        self.replicas: list[Replica] = [r for rs in self._resolved.values() for r in rs]
        self._next = 0

    # ------------------------------------------------------------ selection

    def candidates(self) -> list[Replica]:
        """Available replicas in round-robin order starting at the next one (the first is the
        pick; the rest are failover choices)."""
        replicas = self.replicas
        n = len(replicas)
        start = self._next % n
        self._next = start + 1
        now = time.monotonic()
        ordered = replicas[start:] + replicas[:start] if start else replicas
        return [r for r in ordered if r.down_until <= now]

    def eject(self, replica: Replica) -> None:
        replica.down_until = time.monotonic() + self.eject_s
        log.warning("upstream replica ejected", extra={"pool": self.name, "replica": replica.base,
                                                       "for_s": self.eject_s})

    # ------------------------------------------------------------ resolution

    async def resolve(self) -> None:
        """Re-resolve host names; keep the known state (ejection) of addresses that stay."""
        known = {r.base: r for r in self.replicas}
        changed = False
        for url in self.urls:
            host = url.host or ""
            if _is_ip(host):
                continue
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                infos = await self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                log.warning("upstream name does not resolve", extra={"pool": self.name, "host": host,
                                                                     "error": str(exc)})
                continue  # keep the last known addresses
            bases = []
            for family, ip in infos:
                hostpart = f"[{ip}]" if family == socket.AF_INET6 else ip
                path = url.raw_path.rstrip("/")
                base = f"{url.scheme}://{hostpart}:{port}{path}"
                if base not in bases:
                    bases.append(base)
            if not bases:
                continue
            new = [known.get(b) or Replica(b) for b in bases]
            if [r.base for r in new] != [r.base for r in self._resolved[str(url)]]:
                changed = True
                log.info("upstream replicas changed", extra={"pool": self.name, "host": host,
                                                             "replicas": bases})
            self._resolved[str(url)] = new
        if changed:
            self.replicas = [r for rs in self._resolved.values() for r in rs]

    def needs_resolution(self) -> bool:
        return any(not _is_ip(u.host or "") for u in self.urls)


async def resolve_forever(pools: list[UpstreamPool], interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for pool in pools:
            try:
                await pool.resolve()
            except Exception:  # a resolver bug must not end the loop
                log.exception("upstream resolution failed", extra={"pool": pool.name})
