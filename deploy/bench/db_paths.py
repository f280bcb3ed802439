"""What each way of talking to PostgreSQL costs a ticket request, measured side by side
(issue 16): client CPU and PostgreSQL CPU per operation, and operations per second, for
CLIENTS concurrent clients of one pool, in rounds that take turns.

  GET, before     acquire, BEGIN, set_config, SELECT, COMMIT, asyncpg's reset on release
  GET, no reset   the same, the pool's release without the reset query (shared.db.release_as_is)
  GET, scoped BEGIN   BEGIN and set_config in one message (shared.db.tenant_transaction), SELECT, COMMIT
  GET, one statement  SELECT * FROM ticket_read(org, id) (shared.db's pool, as the service runs it)
  create, before  the old sequence: BEGIN, set_config, organization check, counter, INSERT ticket,
                  INSERT outbox, COMMIT (the counter row locked from the 4th statement to COMMIT)
  create, one statement   SELECT * FROM ticket_create_many(...) with one ticket: all of it, commit included
  create, 8 per statement the same with eight tickets (what ticket-service's batches write under load);
                          its figures are per ticket

    python deploy/bench/db_paths.py      # BENCH_SECONDS=4 per row and round, 2 rounds
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "ticket-service"))

from shared.db import TENANT_SETTING, release_as_is, tenant_transaction  # noqa: E402
from shared.testing import DB_PREFIX, PG_HOSTPORT, prepare_test_database, test_settings  # noqa: E402
from ticket_service.config import Settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import cpu_seconds  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
DATABASE = f"{DB_PREFIX}_bench_db_paths"
COLUMNS = ("id, number, title, description, status, priority, tags, requester_id, assignee_id, created_at, "
           "updated_at, version")
EVENT = {"id": "", "type": "ticket.created", "version": 1, "occurred_at": "2026-11-30T09:00:00Z",
         "source": "ticket-service", "tenant_id": None, "actor": {"user_id": None, "ip": "127.0.0.1"},
         "subject": {"type": "ticket", "id": ""}, "request_id": "bench",
         "data": {"id": "", "number": 0, "title": "bench", "description": "", "status": "open", "priority": "normal",
                  "tags": [], "requester_id": "", "assignee_id": None, "created_at": "2026-11-30T09:00:00Z",
                  "updated_at": "2026-11-30T09:00:00Z", "version": 1}}


async def get_before(pool: asyncpg.Pool, org: uuid.UUID, tid: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config($1, $2, true)", TENANT_SETTING, str(org))
        assert await conn.fetchrow(f"SELECT {COLUMNS} FROM ticket WHERE id = $1 AND deleted_at IS NULL", tid)


async def get_scoped_begin(pool: asyncpg.Pool, org: uuid.UUID, tid: uuid.UUID) -> None:
    async with tenant_transaction(pool, org) as conn:
        assert await conn.fetchrow(f"SELECT {COLUMNS} FROM ticket WHERE id = $1 AND deleted_at IS NULL", tid)


async def get_one_statement(pool: asyncpg.Pool, org: uuid.UUID, tid: uuid.UUID) -> None:
    assert await pool.fetchrow("SELECT * FROM ticket_read($1, $2)", org, tid)


def _event(org: uuid.UUID, tid: uuid.UUID) -> tuple[uuid.UUID, str]:
    eid = uuid.uuid4()
    event = {**EVENT, "id": str(eid), "tenant_id": str(org), "subject": {"type": "ticket", "id": str(tid)},
             "data": {**EVENT["data"], "id": str(tid), "requester_id": str(org)}}
    return eid, json.dumps(event)


async def create_before(pool: asyncpg.Pool, org: uuid.UUID, _: uuid.UUID) -> None:
    tid = uuid.uuid4()
    eid, payload = _event(org, tid)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config($1, $2, true)", TENANT_SETTING, str(org))
        assert not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM deleted_organization)")
        number = await conn.fetchval(
            "INSERT INTO ticket_counter (org_id, last_number) VALUES ($1, 1) ON CONFLICT (org_id) DO UPDATE "
            "SET last_number = ticket_counter.last_number + 1 RETURNING last_number", org)
        await conn.fetchrow(
            f"INSERT INTO ticket (id, org_id, number, title, description, priority, tags, requester_id, assignee_id) "
            f"VALUES ($1, $2, $3, 'bench', '', 'normal', '{{}}', $2, NULL) RETURNING {COLUMNS}", tid, org, number)
        await conn.execute("INSERT INTO outbox (id, routing_key, payload) VALUES ($1, 'ticket.created', $2::jsonb)",
                           eid, payload)


_CREATE_MANY = ("SELECT * FROM ticket_create_many($1, $2, array_fill('bench'::text, ARRAY[$3::int]), "
                "array_fill(''::text, ARRAY[$3::int]), array_fill('normal'::text, ARRAY[$3::int]), "
                "array_fill('[]'::jsonb, ARRAY[$3::int]), array_fill($1::uuid, ARRAY[$3::int]), "
                "array_fill(NULL::uuid, ARRAY[$3::int]), $4, 'ticket.created', $5::jsonb[])")


async def create_tickets(pool: asyncpg.Pool, org: uuid.UUID, count: int) -> list[asyncpg.Record]:
    tids = [uuid.uuid4() for _ in range(count)]
    events = [_event(org, tid) for tid in tids]
    return await pool.fetch(_CREATE_MANY, org, tids, count, [e[0] for e in events], [e[1] for e in events])


async def create_one_statement(pool: asyncpg.Pool, org: uuid.UUID, _: uuid.UUID) -> int:
    assert len(await create_tickets(pool, org, 1)) == 1
    return 1


async def create_eight(pool: asyncpg.Pool, org: uuid.UUID, _: uuid.UUID) -> int:
    assert len(await create_tickets(pool, org, 8)) == 8
    return 8


async def analyze() -> None:
    """Statistics for what the rows before wrote (tens of thousands of tickets: without them the
    next row's reads would be planned for an empty table), as autovacuum would gather them."""
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOSTPORT}/{DATABASE}")
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


async def measure(label: str, pool: asyncpg.Pool, op, org: uuid.UUID, ids: list[uuid.UUID]) -> dict:
    await analyze()
    async with pool.acquire() as conn:
        pids = [r[0] for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1", label)]
    for i in range(50):
        await op(pool, org, ids[i % len(ids)])
    done = 0
    deadline = time.monotonic() + SECONDS

    async def client(k: int) -> None:
        nonlocal done
        i = k
        while time.monotonic() < deadline:
            done += await op(pool, org, ids[i % len(ids)]) or 1
            i += CLIENTS
    cpu0, pg0, t0 = time.process_time(), cpu_seconds(pids), time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(CLIENTS)))
    cpu1, pg1, t1 = time.process_time(), cpu_seconds(pids), time.perf_counter()
    return {"ops": done / (t1 - t0), "client_us": (cpu1 - cpu0) / done * 1e6, "pg_us": (pg1 - pg0) / done * 1e6}


async def main() -> int:
    await prepare_test_database(DATABASE)
    settings = test_settings(Settings, "ticket", database_url=f"postgresql://ticket_app@{PG_HOSTPORT}/{DATABASE}",
                             db_pool_min=CLIENTS, db_pool_max=CLIENTS)
    org = uuid.uuid4()
    pools: dict[str, asyncpg.Pool] = {}
    for name, reset in (("bench-before", {}), ("bench-now", {"reset": release_as_is})):
        # bench-before: asyncpg's default reset on release (the code before issue 16).
        pools[name] = await asyncpg.create_pool(
            settings.database_url, min_size=CLIENTS, max_size=CLIENTS,
            server_settings={"search_path": "ticket", "application_name": name}, **reset)
    try:
        ids = []
        for _ in range(25):
            ids += [row["id"] for row in await create_tickets(pools["bench-now"], org, 8)]
        rows = [("GET, before", "bench-before", get_before), ("GET, no reset", "bench-now", get_before),
                ("GET, scoped BEGIN", "bench-now", get_scoped_begin),
                ("GET, one statement", "bench-now", get_one_statement),
                ("create, before", "bench-before", create_before),
                ("create, one statement", "bench-now", create_one_statement),
                ("create, 8 per statement", "bench-now", create_eight)]
        results: dict[str, list[dict]] = {label: [] for label, _, _ in rows}
        for r in range(ROUNDS):
            for label, pool_name, op in (rows if r % 2 == 0 else rows[::-1]):
                results[label].append(await measure(pool_name, pools[pool_name], op, org, ids))
    finally:
        for pool in pools.values():
            await pool.close()
    print(f"{CLIENTS} clients, {SECONDS:.0f} s per row and round, {ROUNDS} rounds; load average "
          f"{os.getloadavg()[0]:.1f}; means of the rounds")
    print("| path | ops/s | client µs/op | PostgreSQL µs/op |\n|---|---|---|---|")
    for label, rs in results.items():
        mean = {k: sum(x[k] for x in rs) / len(rs) for k in rs[0]}
        print(f"| {label} | {mean['ops']:.0f} | {mean['client_us']:.0f} | {mean['pg_us']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
