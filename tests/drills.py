"""Fault drills: steady traffic through the gateway while a dependency fails, then proof that
nothing was lost and the system recovered by itself.

    make drills                 # long form: starts its own stack, writes tests/DRILLS.md
    pytest tests/e2e -k drill   # short form (CI), on the end-to-end stack

PostgreSQL, Redis and RabbitMQ are taken away by cutting the TCP proxy every process of the
stack connects through (connections drop, new ones are refused: what a client sees of a
stopped or restarting server), so a drill never disturbs anything else on the machine. The
replica drill kills a real ticket-service process.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared import redis_keys  # noqa: E402
from shared.testing import PG_HOSTPORT, cpu_model  # noqa: E402
from tests.e2e.api import PASSWORD, User, expect, scope, signup  # noqa: E402


@dataclass
class Outcome:
    name: str
    sent: int = 0
    failed: int = 0
    statuses: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    def record(self, status: int) -> None:
        self.sent += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def ok(self) -> bool:
        return not self.problems


async def owner_with_org(http) -> User:
    owner = await signup(http, "drill", org_name=f"Drill {uuid.uuid4().hex[:6]}")
    return await scope(http, owner, owner.org_id)


async def steady(duration: float, rate: float, fire) -> None:
    """Call ``fire(i)`` ``rate`` times a second for ``duration`` seconds, without waiting for
    answers (a slow answer must not slow the offered load)."""
    tasks, started, i = [], time.monotonic(), 0
    while time.monotonic() - started < duration:
        tasks.append(asyncio.create_task(fire(i)))
        i += 1
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
    await asyncio.gather(*tasks)


async def audit_counts(database: str, subject_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOSTPORT}/{database}")
    try:
        rows = await conn.fetch("SELECT subject_id, count(*) AS n FROM tenant.audit_event "
                                "WHERE type = 'ticket.created' AND subject_id = ANY($1::text[]) GROUP BY 1",
                                subject_ids)
        return {r["subject_id"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def wait_audited(database: str, ids: list[str], timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    counts = {}
    while time.monotonic() < deadline:
        counts = await audit_counts(database, ids)
        if len(counts) == len(ids):
            break
        await asyncio.sleep(0.5)
    return counts


async def drill_rabbitmq(stack, http, *, outage: float, rate: float = 20) -> Outcome:
    out = Outcome("RabbitMQ unreachable")
    owner = await owner_with_org(http)
    created: list[str] = []

    async def fire(i):
        resp = await http.post("/v1/tickets", headers=owner.auth, json={"title": f"rabbit drill {i}"})
        out.record(resp.status)
        if resp.status == 201:
            created.append((await resp.json())["id"])
        else:
            out.failed += 1

    async def fault():
        await asyncio.sleep(1)
        stack.proxies["rabbitmq"].cut()
        await asyncio.sleep(outage)
        stack.proxies["rabbitmq"].restore()
    await asyncio.gather(steady(outage + 3, rate, fire), fault())
    counts = await wait_audited(stack.database, created, timeout=60)
    out.figures = {"outage_s": outage, "events_expected": len(created), "events_found": len(counts),
                   "events_duplicated": sum(1 for n in counts.values() if n > 1)}
    if out.failed:
        out.problems.append(f"{out.failed} writes failed while the broker was away")
    if len(counts) != len(created) or out.figures["events_duplicated"]:
        out.problems.append("audit log does not hold every event exactly once")
    return out


async def drill_postgres(stack, http, *, outage: float, rate: float = 20) -> Outcome:
    out = Outcome("PostgreSQL restarted")
    owner = await owner_with_org(http)
    results: list[tuple[str, int, float, float]] = []  # title, status, sent at, latency
    cut_at = restored_at = None

    async def fire(i):
        title = f"pg drill {uuid.uuid4().hex[:10]}"
        t0 = time.monotonic()
        try:
            resp = await http.post("/v1/tickets", headers=owner.auth, json={"title": title},
                                   timeout=aiohttp.ClientTimeout(total=15))
            status = resp.status
        except TimeoutError:
            status = 0
        results.append((title, status, t0, time.monotonic() - t0))
        out.record(status)

    async def fault():
        nonlocal cut_at, restored_at
        await asyncio.sleep(1)
        stack.proxies["postgres"].cut()
        cut_at = time.monotonic()
        await asyncio.sleep(outage)
        stack.proxies["postgres"].restore()
        restored_at = time.monotonic()
    await asyncio.gather(steady(outage + 7, rate, fire), fault())
    during = [r for r in results if cut_at <= r[2] < restored_at]
    after_ok = sorted(r[2] + r[3] for r in results if r[2] >= restored_at and r[1] == 201)
    recovery = (after_ok[0] - restored_at) if after_ok else None
    bad = {s for _, s, _, _ in results} - {201, 503}
    out.failed = sum(1 for r in results if r[1] not in (201, 503))  # 503 while it is down is the contract
    # No partial writes: every 201 is stored, nothing refused is.
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOSTPORT}/{stack.database}")
    try:
        stored = {r["title"] for r in await conn.fetch(
            "SELECT title FROM ticket.ticket WHERE title = ANY($1::text[])", [r[0] for r in results])}
    finally:
        await conn.close()
    lost = [t for t, s, _, _ in results if s == 201 and t not in stored]
    phantom = [t for t, s, _, _ in results if s == 503 and t in stored]
    out.figures = {"outage_s": outage, "requests_during_outage": len(during),
                   "answered_503": sum(1 for r in results if r[1] == 503),
                   "slowest_answer_during_outage_s": round(max((r[3] for r in during), default=0), 3),
                   "recovered_after_s": None if recovery is None else round(recovery, 2),
                   "lost_writes": len(lost), "partial_or_phantom_writes": len(phantom)}
    if bad:
        out.problems.append(f"unexpected statuses {sorted(bad)}")
    if out.figures["slowest_answer_during_outage_s"] > 2:
        out.problems.append("a request hung during the outage")
    if recovery is None or recovery > 5:
        out.problems.append("no recovery within 5 s of PostgreSQL's return")
    if lost or phantom:
        out.problems.append("writes lost or half-written")
    return out


async def drill_redis(stack, http, *, outage: float) -> Outcome:
    """Documented behaviour while Redis is down: authenticated reads keep working, authenticated
    writes are refused with 503 (the gateway cannot check revocation), login fails closed (503).
    Afterwards both writes and logins recover by themselves."""
    out = Outcome("Redis unreachable")
    owner = await owner_with_org(http)
    await expect(await http.post("/v1/tickets", headers=owner.auth, json={"title": "redis drill"}), 201)
    stack.proxies["redis"].cut()
    reads = writes_refused = logins_refused = rounds = 0
    try:
        started = time.monotonic()
        while time.monotonic() - started < outage:
            rounds += 1
            r = await http.get("/v1/tickets", headers=owner.auth)
            out.record(r.status)
            reads += r.status == 200
            w = await http.post("/v1/tickets", headers=owner.auth, json={"title": "while redis is down"})
            out.record(w.status)
            writes_refused += w.status == 503
            lg = await http.post("/v1/auth/login", json={"email": owner.email, "password": PASSWORD})
            out.record(lg.status)
            logins_refused += lg.status == 503
            await asyncio.sleep(0.2)
    finally:
        stack.proxies["redis"].restore()
    out.failed = out.statuses.get(500, 0)

    async def recovered(call, ok: int) -> float | None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            if (await call()).status == ok:
                return round(time.monotonic() - t0, 2)
            await asyncio.sleep(0.1)
        return None
    write_back = await recovered(
        lambda: http.post("/v1/tickets", headers=owner.auth, json={"title": "after redis"}), 201)
    login_back = await recovered(
        lambda: http.post("/v1/auth/login", json={"email": owner.email, "password": PASSWORD}), 200)
    out.figures = {"outage_s": outage, "authenticated_reads_ok": f"{reads}/{rounds}",
                   "authenticated_writes_503": f"{writes_refused}/{rounds}", "logins_503": f"{logins_refused}/{rounds}",
                   "writes_recovered_after_s": write_back, "login_recovered_after_s": login_back}
    if out.statuses.get(500):
        out.problems.append("500 answers while Redis was down")
    if reads != rounds:
        out.problems.append("authenticated reads failed while Redis was down")
    if writes_refused != rounds or logins_refused != rounds:
        out.problems.append("writes or logins were not refused with 503 while Redis was down")
    if write_back is None or write_back > 5 or login_back is None or login_back > 5:
        out.problems.append("writes or logins did not recover within 5 s of Redis's return")
    return out


class OwnRedis:
    """A redis-server of the drill's own, on a free port, keeping nothing on disk: killed and
    started again, it comes back empty (never the machine's Redis)."""

    def __init__(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--daemonize", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.02)
        raise RuntimeError("own redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


async def drill_redis_restart(stack, http, *, probe_s: float) -> Outcome:
    """Redis killed and started again with nothing kept. A logged-out access token must stay
    revoked throughout: its writes never succeed, and once Redis answers again its reads are
    refused as soon as auth-service has rebuilt the marks from PostgreSQL (until then the
    gateway applies the Redis-down policy: reads pass, writes 503). Measured: how long until
    the rebuild is done and writes work again."""
    out = Outcome("Redis restarted empty")
    redis = OwnRedis()
    await redis.start()
    probes: list[tuple[float, str, int]] = []
    first = write_back = login_back = None
    killed_at = restarted_at = time.monotonic()
    stack.proxies["redis"].retarget("127.0.0.1", redis.port)  # the stack now uses the drill's Redis
    try:
        owner = await owner_with_org(http)

        async def until(call, ok: int, timeout: float = 20) -> float | None:
            t0 = time.monotonic()
            while time.monotonic() - t0 < timeout:
                if (await call()).status == ok:
                    return time.monotonic() - t0
                await asyncio.sleep(0.05)
            return None

        def write(user):
            return http.post("/v1/tickets", headers=user.auth, json={"title": "redis restart drill"})
        # The first switch to an empty Redis is itself a rebuild.
        first = await until(lambda: write(owner), 201)
        # A second session of the owner, logged out: its access token is the revoked one.
        body = await expect(await http.post("/v1/auth/login", json={"email": owner.email, "password": PASSWORD,
                                                                     "organization_id": owner.org_id}), 200)
        revoked = {"Authorization": f"Bearer {body['tokens']['access_token']}"}
        await expect(await http.post("/v1/auth/logout", headers=revoked), 204)
        await expect(await http.get("/v1/tickets", headers=revoked), 401)

        redis.kill()
        killed_at = time.monotonic()
        await redis.start()
        restarted_at = time.monotonic()
        while time.monotonic() - restarted_at < probe_s:
            t = time.monotonic()
            r = await http.get("/v1/tickets", headers=revoked)
            probes.append((t, "read", r.status))
            w = await http.post("/v1/tickets", headers=revoked, json={"title": "revoked must not write"})
            probes.append((t, "write", w.status))
            if write_back is None:
                ok = await write(owner)
                if ok.status == 201:
                    write_back = time.monotonic() - restarted_at
            if login_back is None:
                lg = await http.post("/v1/auth/login", json={"email": owner.email, "password": PASSWORD})
                if lg.status == 200:
                    login_back = time.monotonic() - restarted_at
            for _, _, status in probes[-2:]:
                out.record(status)
            await asyncio.sleep(0.05)
    finally:
        redis.kill()
        # Back to the stack's usual Redis, which missed the marks written meanwhile: without its
        # ready key, auth-service rebuilds it from PostgreSQL as after any restart.
        import redis.asyncio as aioredis
        original = aioredis.Redis(host=stack.redis_target[0], port=stack.redis_target[1], db=stack.redis_db)
        await original.delete(redis_keys.REVOCATION_READY)
        stack.proxies["redis"].retarget(*stack.redis_target)
        # Leave the stack as found: wait for that rebuild, or the next drill's writes meet the
        # revocation-unknown policy (503).
        deadline = time.monotonic() + 20
        while not await original.exists(redis_keys.REVOCATION_READY) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await original.aclose()
    writes_ok = [p for p in probes if p[1] == "write" and 200 <= p[2] < 300]
    # Once the owner can write again the rebuild is done: the revoked token's reads are refused.
    done_at = restarted_at + write_back if write_back is not None else float("inf")
    reads_after = [p for p in probes if p[1] == "read" and p[0] >= done_at]
    reads_200_after = [p for p in reads_after if p[2] == 200]
    reads_200_before = [p for p in probes if p[1] == "read" and p[0] < done_at and p[2] == 200]
    unexpected = {p[2] for p in probes} - {200, 401, 503}
    out.failed = len(writes_ok) + len(reads_200_after) + sum(1 for p in probes if p[2] in unexpected)
    out.figures = {"redis_down_s": round(restarted_at - killed_at, 2),
                   "first_rebuild_writes_ok_after_s": None if first is None else round(first, 2),
                   "writes_ok_again_after_restart_s": None if write_back is None else round(write_back, 2),
                   "login_ok_after_restart_s": None if login_back is None else round(login_back, 2),
                   "revoked_token_writes_accepted": len(writes_ok),
                   "revoked_token_reads_200_after_rebuild": f"{len(reads_200_after)}/{len(reads_after)}",
                   "revoked_token_reads_200_before_rebuild_(down_policy)": len(reads_200_before)}
    if writes_ok:
        out.problems.append("a revoked token wrote after the Redis restart")
    if reads_200_after or not reads_after:
        out.problems.append("a revoked token read after the rebuild (or no read was probed after it)")
    if unexpected:
        out.problems.append(f"unexpected statuses {sorted(unexpected)}")
    if write_back is None or write_back > 5:
        out.problems.append("writes did not work again within 5 s of Redis's restart")
    return out


def _listener_pid(port: int) -> int | None:
    # ss (iproute2) names the process listening on the replica's port.
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    for part in out.split("pid=")[1:]:
        return int(part.split(",")[0])
    return None


async def drill_replica(stack, http, *, duration: float, rate: float = 40) -> Outcome:
    out = Outcome("one of two ticket-service replicas killed")
    owner = await owner_with_org(http)
    t = await expect(await http.post("/v1/tickets", headers=owner.auth, json={"title": "replica drill"}), 201)
    victim_port = stack.port_base + 3 + 100
    pid = _listener_pid(victim_port)
    if pid is None:
        out.problems.append(f"no replica listening on {victim_port}")
        return out

    async def fire(i):
        r = await http.get(f"/v1/tickets/{t['id']}", headers=owner.auth)
        out.record(r.status)
        out.failed += r.status != 200

    async def fault():
        await asyncio.sleep(duration / 4)
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    await asyncio.gather(steady(duration, rate, fire), fault())
    rate_failed = out.failed / max(1, out.sent)
    out.figures = {"duration_s": duration, "failed_ratio": f"{rate_failed:.2%}"}
    if rate_failed >= 0.01:
        out.problems.append("1% or more requests failed")
    return out


def table(outcomes: list[Outcome]) -> str:
    lines = ["| drill | requests sent | failed (unexpected answers) | figures | verdict |", "|---|---|---|---|---|"]
    for o in outcomes:
        figs = ", ".join(f"{k}={v}" for k, v in o.figures.items())
        lines.append(f"| {o.name} | {o.sent} | {o.failed} | {figs} | {'ok' if o.ok else '; '.join(o.problems)} |")
    return "\n".join(lines)


async def run_all(stack, *, long: bool) -> list[Outcome]:
    async with aiohttp.ClientSession(base_url=stack.url) as http:
        outcomes = [
            await drill_rabbitmq(stack, http, outage=30 if long else 4),
            await drill_postgres(stack, http, outage=10 if long else 3),
            await drill_redis(stack, http, outage=10 if long else 2),
            await drill_redis_restart(stack, http, probe_s=10 if long else 5),
            await drill_replica(stack, http, duration=20 if long else 6),
        ]
    return outcomes


def main() -> int:
    import platform

    from tests.stack import Stack
    stack = Stack(database="drills", port_base=28080, ticket_replicas=2, redis_db=4, proxied=True)
    asyncio.run(stack.prepare())
    stack.start()
    try:
        outcomes = asyncio.run(run_all(stack, long=True))
    finally:
        stack.stop()
    cpu = cpu_model()
    report = (f"# Fault drills\n\nRun by `make drills` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}.\n\n" + table(outcomes) + "\n")
    print(report)
    (Path(__file__).resolve().parent / "DRILLS.md").write_text(report)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
