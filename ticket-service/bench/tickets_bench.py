"""Ticket reads at scale: one million tickets over a hundred organizations, read through the
real ticket-service over HTTP.

    .venv/bin/python ticket-service/bench/tickets_bench.py [--requests 1000] [--concurrency 8] [--reseed]

1. Database ``saas_bench``: created with shared.dbsetup and migrated with the runner (as
   ticket_owner), like production.
2. Seed (skipped when already present): 1,000,000 tickets; one large organization holds
   100,000 of them, the 99 others about 9,090 each. Rows are generated in Python, streamed with
   COPY into a temporary table, and moved into ``ticket`` one organization at a time under that
   organization's row-level-security scope, as ticket_owner (FORCE ROW LEVEL SECURITY holds for
   the owner too, and COPY cannot write into a table under row-level security directly).
3. ``python -m ticket_service`` runs as in production (uvloop, ticket_app, RLS) on a free port;
   tokens are minted by shared.testing.TokenFactory, whose JWKS the service fetches over HTTP.
4. An aiohttp client measures p50/p99 of: GET /v1/tickets/{id}; the first list page; the page
   1,000 pages deep (cursor reached by walking 1,000 pages of 20 in the large organization);
   the same for -priority; and a full-text search. Results go to ticket-service/bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
SERVICE_DIR = HERE.parent
REPO = SERVICE_DIR.parent
sys.path[:0] = [str(REPO / "shared"), str(SERVICE_DIR)]

from shared.db import scope_transaction  # noqa: E402
from shared.dbsetup import setup as db_setup  # noqa: E402
from shared.migrations import SHARED_MIGRATIONS, Runner  # noqa: E402
from shared.testing import TokenFactory, cpu_model  # noqa: E402

PG = os.environ.get("BENCH_PG_HOSTPORT", "127.0.0.1:5432")
DATABASE = os.environ.get("BENCH_DATABASE_NAME", "saas_bench")
ADMIN_DSN = os.environ.get("ADMIN_DATABASE_URL", f"postgresql://postgres@{PG}/postgres")
OWNER_DSN = f"postgresql://ticket_owner@{PG}/{DATABASE}"
APP_DSN = f"postgresql://ticket_app@{PG}/{DATABASE}"

TOTAL = 1_000_000
ORGS = 100
LARGE_ORG_TICKETS = 100_000
USERS_PER_ORG = 50
NAMESPACE = uuid.UUID("6b1d8f5e-3c2a-4e7b-9a10-5f0c2d4e6a88")
WORDS = ("printer network vpn laptop password reset email outlook invoice billing refund login error "
         "slow crash screen keyboard mouse license upgrade install server database backup restore "
         "access permission account phone wifi monitor docking meeting calendar report export import "
         "sync timeout certificate firewall proxy disk memory update driver camera audio").split()
TAGS = ("billing", "hardware", "software", "network", "vip", "urgent-customer", "onboarding", "security")
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")
STATUSES = ("open", "open", "in_progress", "pending", "resolved", "closed")


def org_id(i: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"org-{i}")


def user_id(org: int, j: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"user-{org}-{j}")


def tickets_per_org() -> list[int]:
    rest, others = TOTAL - LARGE_ORG_TICKETS, ORGS - 1
    return [LARGE_ORG_TICKETS] + [rest // others + (1 if i < rest % others else 0) for i in range(others)]


# ---------------------------------------------------------------- database and seed

async def prepare_database() -> None:
    await db_setup(ADMIN_DSN, DATABASE, ["ticket"])
    # The seed stages rows in a temporary table; dbsetup grants no TEMP (production needs none),
    # so the bench grants it to the owner role in its own database only.
    admin = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{DATABASE}")
    try:
        await admin.execute(f'GRANT TEMPORARY ON DATABASE "{DATABASE}" TO ticket_owner')
    finally:
        await admin.close()
    await Runner(OWNER_DSN, "ticket", [SHARED_MIGRATIONS, SERVICE_DIR / "migrations"], out=open(os.devnull, "w")).up()


async def seeded(conn: asyncpg.Connection) -> bool:
    counts = tickets_per_org()
    for i in range(ORGS):
        async with conn.transaction():
            await scope_transaction(conn, org_id(i))
            have = await conn.fetchval("SELECT count(*) FROM ticket")
        if have != counts[i]:
            return False
    return True


def org_rows(i: int, n: int, rng: random.Random, now: dt.datetime):
    oid = org_id(i)
    users = [user_id(i, j) for j in range(USERS_PER_ORG)]
    agents = users[:5]
    # Creation times spread over a year, increasing with the number.
    step = 365 * 86400 / n
    start = now - dt.timedelta(days=365)
    for k in range(n):
        created = start + dt.timedelta(seconds=k * step + rng.random() * step)
        updated = created + dt.timedelta(seconds=rng.random() * 86400 * 3)
        title = " ".join(rng.choices(WORDS, k=rng.randint(3, 7))).capitalize()
        description = " ".join(rng.choices(WORDS, k=rng.randint(10, 40))) + "."
        tags = rng.sample(TAGS, rng.randint(0, 2))
        yield (uuid.UUID(int=rng.getrandbits(128), version=4), oid, k + 1, title, description, rng.choice(STATUSES),
               rng.choice(PRIORITIES), tags, rng.choice(users), rng.choice(agents) if rng.random() < 0.6 else None,
               created, min(updated, now), 1)


COLUMNS = ["id", "org_id", "number", "title", "description", "status", "priority", "tags", "requester_id",
           "assignee_id", "created_at", "updated_at", "version"]


async def seed(conn: asyncpg.Connection) -> float:
    started = time.monotonic()
    rng = random.Random(20261122)
    now = dt.datetime.now(dt.UTC)
    counts = tickets_per_org()
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SET maintenance_work_mem = '256MB'")
    await conn.execute("SET statement_timeout = 0")
    # Temporary tables have no row-level security, so COPY can fill one; each organization's
    # rows then move into ticket under that organization's scope.
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS ticket_seed (LIKE ticket INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    with tqdm(total=TOTAL, unit="ticket", desc="seeding", smoothing=0.05) as bar:
        for i in range(ORGS):
            async with conn.transaction():
                await scope_transaction(conn, org_id(i))
                await conn.execute("DELETE FROM ticket_comment")
                await conn.execute("DELETE FROM ticket")
                rows = list(org_rows(i, counts[i], rng, now))
                await conn.copy_records_to_table("ticket_seed", records=rows, columns=COLUMNS)
                await conn.execute(f"INSERT INTO ticket ({', '.join(COLUMNS)}) "
                                   f"SELECT {', '.join(COLUMNS)} FROM ticket_seed")
                await conn.execute(
                    "INSERT INTO ticket_counter (org_id, last_number) VALUES ($1, $2) "
                    "ON CONFLICT (org_id) DO UPDATE SET last_number = EXCLUDED.last_number", org_id(i), counts[i])
            bar.update(counts[i])
    # Sets the visibility map (index-only scans) and statistics, as autovacuum would later.
    await conn.execute("VACUUM (ANALYZE) ticket")
    return time.monotonic() - started


async def sample_ids(conn: asyncpg.Connection, n: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    out = []
    for i in range(ORGS):
        async with conn.transaction():
            await scope_transaction(conn, org_id(i))
            rows = await conn.fetch("SELECT id FROM ticket TABLESAMPLE SYSTEM (5) LIMIT $1", n // ORGS + 1)
        out += [(org_id(i), r["id"]) for r in rows]
    random.Random(1).shuffle(out)
    return out[:n]


# ---------------------------------------------------------------- the service

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(port: int, jwks_url: str) -> subprocess.Popen:
    env = dict(os.environ, ENVIRONMENT="development", TICKET_PORT=str(port), TICKET_HOST="127.0.0.1",
               TICKET_DATABASE_URL=APP_DSN, TICKET_MIGRATE_DATABASE_URL=OWNER_DSN, TICKET_CONSUMERS_ENABLED="false",
               RELAY_ENABLED="false",
               TICKET_DB_POOL_MAX="10", JWKS_URL=jwks_url, LOG_LEVEL="WARNING", EVENTS_EXCHANGE="events_bench_unused")
    proc = subprocess.Popen([sys.executable, "-m", "ticket_service"], env=env, cwd=str(REPO))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("ticket-service exited during start-up") from None
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("ticket-service did not start")


# ---------------------------------------------------------------- measuring

async def measure(session: aiohttp.ClientSession, scenarios: dict[str, list[tuple[str, dict]]],
                  concurrency: int, warmup: int = 200) -> list[dict]:
    """Every scenario's requests shuffled into one stream, so that the machine's drift (it is
    shared) weighs on each scenario alike; latencies are kept per scenario."""
    async def one(name, url, headers) -> float:
        t0 = time.perf_counter()
        async with session.get(url, headers=headers) as resp:
            await resp.read()
            if resp.status != 200:
                raise SystemExit(f"{name}: {url} answered {resp.status}")
        return time.perf_counter() - t0

    stream = [(name, url, headers) for name, reqs in scenarios.items() for url, headers in reqs]
    random.Random(2).shuffle(stream)
    for item in stream[:warmup]:
        await one(*item)
    latencies: dict[str, list[float]] = {name: [] for name in scenarios}

    async def worker():
        while stream:
            name, url, headers = stream.pop()
            latencies[name].append(await one(name, url, headers))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    out = []
    for name, values in latencies.items():
        values.sort()
        out.append({"name": name, "n": len(values), "p50": statistics.median(values) * 1000,
                    "p99": values[min(len(values) - 1, int(len(values) * 0.99))] * 1000})
    total = sum(len(v) for v in latencies.values())
    print(f"measured {total} requests in {elapsed:.1f}s ({total / elapsed:.0f} req/s overall)")
    return out


async def walk(session, base: str, headers: dict, params: dict, pages: int) -> tuple[str, int]:
    cursor, seen = None, 0
    for _ in range(pages):
        q = dict(params, **({"cursor": cursor} if cursor else {}))
        async with session.get(f"{base}/v1/tickets", params=q, headers=headers) as resp:
            body = await resp.json()
        seen += len(body["items"])
        cursor = body["next_cursor"]
    return cursor, seen


async def run(args) -> None:
    await prepare_database()
    conn = await asyncpg.connect(OWNER_DSN, server_settings={"search_path": "ticket"})
    try:
        seed_s = None
        if args.reseed or not await seeded(conn):
            seed_s = await seed(conn)
            print(f"seeded {TOTAL:,} tickets in {seed_s:.1f}s")
        else:
            print("seed already present, reused")
        ids = await sample_ids(conn, args.requests)
    finally:
        await conn.close()

    tokens = TokenFactory()
    jwks_url = await tokens.serve_jwks()
    port = free_port()
    proc = start_service(port, jwks_url)
    base = f"http://127.0.0.1:{port}"

    def agent_headers(org: uuid.UUID) -> dict:
        token = tokens.mint(user_id=uuid.uuid5(NAMESPACE, f"bench-agent-{org}"), tenant_id=org, role="agent",
                            ttl_s=3600)
        return {"Authorization": f"Bearer {token}"}

    try:
        headers_by_org = {org_id(i): agent_headers(org_id(i)) for i in range(ORGS)}
        large = org_id(0)
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            n = args.requests
            orgs = [org_id(i) for i in range(ORGS)]
            scenarios: dict[str, list[tuple[str, dict]]] = {
                "GET /v1/tickets/{id} (random org)": [
                    (f"{base}/v1/tickets/{tid}", headers_by_org[oid]) for oid, tid in ids],
                "first page, -created_at (random org)": [
                    (f"{base}/v1/tickets?limit=20", headers_by_org[random.choice(orgs)]) for _ in range(n)],
            }
            for sort in ("-created_at", "-priority"):
                t0 = time.perf_counter()
                cursor, seen = await walk(session, base, headers_by_org[large], {"limit": "20", "sort": sort}, 1000)
                walk_s = time.perf_counter() - t0
                assert cursor and seen == 20_000, (seen, cursor)
                print(f"walked 1,000 pages of {sort} in {walk_s:.1f}s")
                scenarios[f"first page, {sort} (large org)"] = [
                    (f"{base}/v1/tickets?limit=20&sort={sort}", headers_by_org[large]) for _ in range(n)]
                scenarios[f"page 1,001 (rows 20,001-20,020), {sort} (large org)"] = [
                    (f"{base}/v1/tickets?limit=20&sort={sort}&cursor={cursor}", headers_by_org[large])
                    for _ in range(n)]
            scenarios["search q=printer, first page (random org)"] = [
                (f"{base}/v1/tickets?limit=20&q=printer", headers_by_org[random.choice(orgs)]) for _ in range(n)]
            results = await measure(session, scenarios, args.concurrency)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        await tokens.close()
    report(results, seed_s, args)


def report(results: list[dict], seed_s: float | None, args) -> None:
    cpu = cpu_model()
    by = {r["name"]: r for r in results}
    lines = [
        "# Ticket read benchmark",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, PostgreSQL at {PG}; load average before the run "
        f"{os.getloadavg()[0]:.2f} (the machine is shared)",
        f"- data: {TOTAL:,} tickets in {ORGS} organizations of database `{DATABASE}` (one organization "
        f"with {LARGE_ORG_TICKETS:,}, the others ~{(TOTAL - LARGE_ORG_TICKETS) // (ORGS - 1):,}); "
        + (f"seeded in this run in {seed_s:.0f} s" if seed_s is not None else "seed reused from an earlier run"),
        f"- service: `python -m ticket_service` (1 process, uvloop) as ticket_app under row-level security, "
        f"pool of 10; client: aiohttp, {args.concurrency} concurrent requests, {args.requests} measured requests "
        f"per row, all rows' requests shuffled into one stream (after 200 warm-up requests) so drift on the "
        f"shared machine weighs on each row alike; client, service and PostgreSQL share the same CPUs",
        "",
        "| request | p50 ms | p99 ms |",
        "|---|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['p50']:.2f} | {r['p99']:.2f} |")
    lines.append("")
    for sort in ("-created_at", "-priority"):
        first = by[f"first page, {sort} (large org)"]
        deep = by[f"page 1,001 (rows 20,001-20,020), {sort} (large org)"]
        lines.append(f"- {sort}: page 1,001 p50 is {deep['p50'] / first['p50'] * 100:.0f}% of the first page's "
                     f"(p99 {deep['p99'] / first['p99'] * 100:.0f}%).")
    lines += [
        "",
        "Keyset cursors make a deep page one descent of the (org_id, key, id) index like the first page, so the",
        "depth does not show. Full-text search is a filter over the organization's rows in sort order, not a GIN",
        "index scan: under row-level security PostgreSQL only uses leakproof operators as index conditions and",
        "`@@` is not leakproof (see the ticket-service README section).",
        "",
        "Command: `.venv/bin/python ticket-service/bench/tickets_bench.py` (`--reseed` to rebuild the data).",
    ]
    text = "\n".join(lines) + "\n"
    (HERE / "RESULTS.md").write_text(text)
    print(text)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--reseed", action="store_true")
    args = p.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
