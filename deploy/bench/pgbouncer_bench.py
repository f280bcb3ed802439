"""What PgBouncer in transaction mode costs per request (`make bench-pgbouncer`).

One request's database work as the services do it: a transaction that sets the row-level
security scope (set_config(..., true)) and reads one row by primary key. Run by 16 concurrent
clients over a pool of 10 connections, for BENCH_SECONDS each way:
  direct         asyncpg -> PostgreSQL, statement cache on (the default deployment)
  direct, no cache   the same with statement_cache_size=0 (isolates the cache's share)
  pgbouncer      asyncpg (statement_cache_size=0) -> PgBouncer (transaction mode) -> PostgreSQL
Writes deploy/bench/PGBOUNCER.md.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.db import TENANT_SETTING, scope_transaction  # noqa: E402
from shared.pgbouncer import PgBouncerProcess  # noqa: E402
from shared.testing import ADMIN_DSN, DB_PREFIX, PG_HOSTPORT, cpu_model  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CLIENTS, POOL = 16, 10
DATABASE = f"{DB_PREFIX}_bench_pgbouncer"
ROLE = "ticket_app"


async def prepare() -> None:
    from shared.dbsetup import setup
    await setup(ADMIN_DSN, DATABASE, ["ticket"])
    conn = await asyncpg.connect(f"postgresql://ticket_owner@{PG_HOSTPORT}/{DATABASE}")
    try:
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS ticket.bench_row (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
            INSERT INTO ticket.bench_row SELECT g, 'org', 'row ' || g FROM generate_series(1, 1000) g
              ON CONFLICT DO NOTHING;""")
    finally:
        await conn.close()


async def run(dsn: str, **pool_kw) -> dict:
    pool = await asyncpg.create_pool(dsn, min_size=POOL, max_size=POOL, **pool_kw)
    latencies: list[float] = []
    deadline = time.monotonic() + SECONDS

    async def client(n: int) -> None:
        i = n
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with pool.acquire() as conn, conn.transaction():
                await scope_transaction(conn, "org")
                await conn.fetchrow("SELECT id, title FROM ticket.bench_row WHERE id = $1", i % 1000 + 1)
            latencies.append(time.perf_counter() - started)
            i += CLIENTS
    try:
        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
        elapsed = time.monotonic() - started
    finally:
        await pool.close()
    latencies.sort()
    return {"ops": len(latencies) / elapsed, "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[int(len(latencies) * 0.99)] * 1000}


async def main() -> int:
    await prepare()
    bouncer = PgBouncerProcess(PG_HOSTPORT, pool_size=POOL).start()
    try:
        direct = f"postgresql://{ROLE}@{PG_HOSTPORT}/{DATABASE}"
        pooled = f"postgresql://{ROLE}@127.0.0.1:{bouncer.port}/{DATABASE}"
        results = {
            "direct": await run(direct),
            "direct, no statement cache": await run(direct, statement_cache_size=0),
            "pgbouncer (transaction mode)": await run(pooled, statement_cache_size=0),
        }
    finally:
        bouncer.stop()
    base = results["direct"]

    lines = [
        "# PgBouncer cost per request",
        "",
        f"`make bench-pgbouncer` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores "
        f"({cpu_model()}), PostgreSQL, PgBouncer and the client on the same machine; {CLIENTS} concurrent clients, "
        f"a pool of {POOL} connections (PgBouncer: {POOL} server connections), {SECONDS:.0f} s per row. One "
        f"transaction = what a request does: set_config('{TENANT_SETTING}', ..., true) + one primary-key read.",
        "",
        "| path | transactions/s | p50 ms | p99 ms | p50 added vs direct |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['ops']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                     f"{r['p50'] - base['p50']:+.2f} ms |")
    lines += ["", "The machine is shared (2 cores, other suites running): compare rows of one run, not runs."]

    out = ROOT / "deploy" / "bench" / "PGBOUNCER.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
