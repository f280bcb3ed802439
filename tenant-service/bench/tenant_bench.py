"""Latency and throughput of tenant-service's hot routes, on the real test database.

    .venv/bin/python tenant-service/bench/tenant_bench.py [--seconds 6] [--concurrency 16]

tenant-service runs as its own process (``python -m tenant_service``, one aiohttp worker with
uvloop, relay and consumer off); this process serves the JWKS and drives HTTP load:

- the membership lookup auth-service makes on every login and refresh;
- a page of members of an organization with 200 members;
- a page of the audit log (5,000 rows for the organization, under row-level security),
  unfiltered and filtered by type;
- role changes (row lock on the organization, membership re-check, outbox insert); all 16
  clients write to one organization, whose row lock serialises them by design (the
  last-owner rule cannot be raced).

Writes the table to tenant-service/bench/RESULTS.md. The bench's rows are removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "tenant-service")]

from shared.messaging.envelope import Actor, Event, Subject  # noqa: E402
from shared.messaging.outbox import event_json  # noqa: E402
from shared.testing import TokenFactory, admin_dsn, app_dsn, cpu_model, prepare_test_database  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def seed(admin: asyncpg.Connection, app: asyncpg.Pool, members: int, audit_rows: int):
    org_id, owner = uuid.uuid4(), uuid.uuid4()
    await admin.execute("INSERT INTO tenant.organization (id, name, slug) VALUES ($1, 'Bench', $2)",
                        org_id, f"bench-{org_id.hex[:12]}")
    users = [owner] + [uuid.uuid4() for _ in range(members - 1)]
    await admin.executemany(
        "INSERT INTO tenant.user_profile (user_id, email, name, updated_at) VALUES ($1, $2, 'Bench User', now())",
        [(u, f"bench-{u.hex[:12]}@example.com") for u in users])
    await admin.executemany(
        "INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, $3)",
        [(org_id, u, "owner" if i == 0 else "member") for i, u in enumerate(users)])
    base = datetime.now(UTC) - timedelta(days=30)
    rows = []
    for i in range(audit_rows):
        e = Event(id=uuid.uuid4(), type=("ticket.created", "ticket.updated", "membership.role_changed")[i % 3],
                  occurred_at=base + timedelta(seconds=i * 30), source="bench", tenant_id=org_id,
                  actor=Actor(user_id=users[i % members]), subject=Subject(type="ticket", id=str(uuid.uuid4())),
                  request_id=uuid.uuid4().hex, data={"n": i})
        rows.append((e.id, org_id, e.type, e.occurred_at, e.actor.user_id, "ticket", e.subject.id, e.request_id,
                     event_json(e)))
    async with app.acquire() as conn:  # as the audit consumer writes: tenant_app
        await conn.executemany(
            "INSERT INTO audit_event (id, tenant_id, type, occurred_at, actor_user_id, subject_type, subject_id, "
            "request_id, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)", rows)
    return org_id, users


async def drive(session, make_request, seconds: float, concurrency: int) -> dict:
    latencies, errors = [], 0
    stop = time.perf_counter() + seconds

    async def worker(n: int):
        nonlocal errors
        i = n
        while time.perf_counter() < stop:
            method, url, kw = make_request(i)
            i += concurrency
            t0 = time.perf_counter()
            async with session.request(method, url, **kw) as resp:
                await resp.read()
                if resp.status >= 400:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"n": len(latencies), "rps": len(latencies) / elapsed, "p50": q[49] * 1000, "p95": q[94] * 1000,
            "p99": q[98] * 1000, "errors": errors}


async def main(seconds: float, concurrency: int) -> None:
    await prepare_test_database()
    tf = TokenFactory()
    jwks_url = await tf.serve_jwks()
    internal = f"bench-{uuid.uuid4().hex}"
    admin = await asyncpg.connect(admin_dsn())
    app_pool = await asyncpg.create_pool(app_dsn("tenant"), min_size=1, max_size=2,
                                         server_settings={"search_path": "tenant"})
    org_id, users = await seed(admin, app_pool, members=200, audit_rows=5000)
    port = free_port()
    env = {**os.environ, "ENVIRONMENT": "development", "TENANT_PORT": str(port),
           "TENANT_DATABASE_URL": app_dsn("tenant"), "JWKS_URL": jwks_url, "INTERNAL_API_TOKEN": internal,
           "RELAY_ENABLED": "false", "TENANT_USERS_CONSUMER_ENABLED": "false",
           "LOG_LEVEL": "WARNING", "PYTHONPATH": f"{REPO / 'shared'}:{REPO / 'tenant-service'}"}
    proc = subprocess.Popen([sys.executable, "-m", "tenant_service"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    owner = {"Authorization": f"Bearer {tf.mint(user_id=users[0], tenant_id=org_id, role='owner')}"}
    results = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            for _ in range(100):
                try:
                    async with session.get(f"{base}/health/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            scenarios = [
                ("GET /internal/users/{id}/memberships", lambda i: (
                    "GET", f"{base}/internal/users/{users[i % len(users)]}/memberships",
                    {"headers": {"X-Internal-Token": internal}})),
                ("GET /v1/organizations/{id}/members?limit=20", lambda i: (
                    "GET", f"{base}/v1/organizations/{org_id}/members?limit=20", {"headers": owner})),
                ("GET /v1/organizations/{id}/audit-events?limit=20", lambda i: (
                    "GET", f"{base}/v1/organizations/{org_id}/audit-events?limit=20", {"headers": owner})),
                ("GET .../audit-events?type=membership.role_changed&limit=20", lambda i: (
                    "GET", f"{base}/v1/organizations/{org_id}/audit-events?type=membership.role_changed&limit=20",
                    {"headers": owner})),
                ("PATCH /v1/organizations/{id}/members/{user_id} (role change)", lambda i: (
                    "PATCH", f"{base}/v1/organizations/{org_id}/members/{users[1 + i % (len(users) - 1)]}",
                    {"headers": owner, "json": {"role": ("agent", "member")[(i // (len(users) - 1)) % 2]}})),
            ]
            for name, make in scenarios:
                await drive(session, make, 1.0, concurrency)  # warm-up
                results.append((name, await drive(session, make, seconds, concurrency)))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        await tf.close()
        await admin.execute("DELETE FROM tenant.outbox WHERE payload->>'tenant_id' = $1", str(org_id))
        await admin.execute("DELETE FROM tenant.audit_event WHERE tenant_id = $1", org_id)
        await admin.execute("DELETE FROM tenant.organization WHERE id = $1", org_id)
        await admin.execute("DELETE FROM tenant.user_profile WHERE user_id = ANY($1::uuid[])", users)
        await admin.close()
        await app_pool.close()

    lines = [
        "# tenant-service benchmark", "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs ({cpu_model()}); load generator and service on the same machine; "
        f"1-minute load average at the end {os.getloadavg()[0]:.1f} (other work shares the machine)",
        f"- tenant-service: one aiohttp worker (uvloop), PostgreSQL 15 local; concurrency {concurrency}, "
        f"{seconds:g} s per row after a 1 s warm-up",
        "- data: one organization with 200 members and 5,000 audit rows", "",
        "| route | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results:
        lines.append(f"| {name} | {r['n']} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} "
                     f"| {r['errors']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (REPO / "tenant-service" / "bench" / "RESULTS.md").write_text(text)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
