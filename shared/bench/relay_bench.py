"""Event backbone benchmark: relay throughput with publisher confirms, and the lag from commit
to audit row at a steady rate, with a real relay and the real audit consumer (each in its own
process) on a dedicated database ``saas_bench`` and a unique exchange.

    .venv/bin/python shared/bench/relay_bench.py [--events 15000] [--repeat 3] [--rate 200] [--seconds 20]

Prints a markdown table and writes shared/bench/RESULTS.md, keeping its notes (shared.testing.kept_notes).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "tenant-service")]

from shared.config import BaseServiceSettings  # noqa: E402
from shared.db import create_pool  # noqa: E402
from shared.dbsetup import setup as db_setup  # noqa: E402
from shared.messaging import add_event  # noqa: E402
from shared.messaging.broker import connect, declare_events_exchange  # noqa: E402
from shared.messaging.relay import OutboxRelay  # noqa: E402
from shared.messaging.testing import delete_broker_objects  # noqa: E402
from shared.migrations import SHARED_MIGRATIONS, Runner  # noqa: E402
from shared.testing import cpu_model, kept_notes  # noqa: E402

DATABASE = "saas_bench"
PG = os.environ.get("TEST_PG_HOSTPORT", "127.0.0.1:5432")
ADMIN_DSN = os.environ.get("ADMIN_DATABASE_URL", f"postgresql://postgres@{PG}/postgres")
APP_DSN = f"postgresql://tenant_app@{PG}/{DATABASE}"
OWNER_DSN = f"postgresql://tenant_owner@{PG}/{DATABASE}"
BENCH_ADMIN_DSN = f"postgresql://postgres@{PG}/{DATABASE}"
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


# ---------------------------------------------------------------- the relay process

async def relay_process(exchange: str, batch_size: int, inflight: int) -> None:
    settings = BaseServiceSettings(database_url=APP_DSN, db_schema="tenant", events_exchange=exchange,
                                   db_pool_max=10, relay_batch_size=batch_size)
    pool = await create_pool(settings)
    # The services' defaults (RELAY_POLL_INTERVAL_S, RELAY_LINGER_MS). The benchmark commits its
    # events from another process, so nothing wakes this relay after a commit (a service's own
    # writes do, shared.messaging.relay.wake_relay_after_write): it finds them by polling, as it
    # finds a command's or a background task's events.
    relay = OutboxRelay(pool, amqp_url=AMQP_URL, exchange=exchange, schema="tenant", batch_size=batch_size,
                        poll_interval_s=settings.relay_poll_interval_s, max_inflight_batches=inflight,
                        linger_s=settings.relay_linger_ms / 1000)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(relay.run())
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await pool.close()


# ---------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    return (f"{os.cpu_count()} cores ({cpu_model()}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


async def prepare_database() -> None:
    await db_setup(ADMIN_DSN, DATABASE)
    await Runner(OWNER_DSN, "tenant", [SHARED_MIGRATIONS, REPO / "tenant-service" / "migrations"],
                 out=open(os.devnull, "w")).up()
    conn = await asyncpg.connect(BENCH_ADMIN_DSN)
    try:  # a dedicated database: start from an empty outbox
        await conn.execute("TRUNCATE tenant.outbox")
    finally:
        await conn.close()


async def insert_pending(pool, n: int, *, per_tx: int = 500, org: uuid.UUID | None = None) -> list[uuid.UUID]:
    """N events committed per_tx at a time; each of its own organization, or all of ``org``."""
    ids = []
    for start in range(0, n, per_tx):
        async with pool.acquire() as conn, conn.transaction():
            for _ in range(min(per_tx, n - start)):
                ids.append((await one_event(conn, org)).id)
    return ids


async def one_event(conn, org: uuid.UUID | None = None):
    org = org or uuid.uuid4()
    return await add_event(conn, source="bench", type="ticket.updated", subject_type="ticket",
                           subject_id=str(uuid.uuid4()), tenant_id=org, actor_user_id=uuid.uuid4(),
                           actor_ip="198.51.100.7", request_id=uuid.uuid4().hex,
                           data={"changes": {"status": ["open", "pending"]}, "version": 2})


async def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        await asyncio.sleep(0.05)


def spawn(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, "ENVIRONMENT": "development", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# ---------------------------------------------------------------- phases

async def relay_throughput(admin, pool, exchange: str, n: int, batch_size: int, inflight: int) -> dict:
    """N pending events, one relay started cold; a bound quorum queue persists every message."""
    sink = f"bench_sink_{uuid.uuid4().hex[:8]}"
    connection = await connect(AMQP_URL)
    try:
        channel = await connection.channel()
        ex = await declare_events_exchange(channel, exchange)
        queue = await channel.declare_queue(sink, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(ex, routing_key="#")
    finally:
        await connection.close()
    ids = await insert_pending(pool, n)
    relay = spawn([sys.executable, __file__, "--relay-process", exchange, str(batch_size), str(inflight)], {})
    started = time.monotonic()
    try:
        async def drained():
            return await admin.fetchval("SELECT count(*) FROM tenant.outbox WHERE sent_at IS NULL") == 0
        await wait_for(drained, 120, "the relay to drain the outbox")
        wall = time.monotonic() - started
    finally:
        stop(relay)
    span = await admin.fetchval("SELECT EXTRACT(EPOCH FROM max(sent_at) - min(created_at)) FROM tenant.outbox "
                                "WHERE id = ANY($1::uuid[])", ids)
    first_sent = await admin.fetchval("SELECT EXTRACT(EPOCH FROM max(sent_at) - min(sent_at)) FROM tenant.outbox "
                                      "WHERE id = ANY($1::uuid[])", ids)
    await delete_broker_objects(AMQP_URL, queues=[sink])
    return {"events": n, "batch_size": batch_size, "inflight": inflight, "wall_s": wall, "rate_wall": n / wall,
            "rate_publishing": n / float(first_sent) if first_sent else float("nan"), "_span": span}


async def steady_lag(admin, pool, rate: int, seconds: float) -> dict:
    """One event per transaction at a steady rate; lag = audit row recorded_at - commit time."""
    committed: dict[uuid.UUID, float] = {}
    interval = 1.0 / rate
    start = time.monotonic() + 0.1
    total = int(rate * seconds)
    for i in range(total):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with pool.acquire() as conn:
            async with conn.transaction():
                event = await one_event(conn)
            committed[event.id] = time.time()
    produced_s = time.monotonic() - start
    ids = list(committed)

    async def all_recorded():
        recorded = await admin.fetchval("SELECT count(*) FROM tenant.audit_event WHERE id = ANY($1::uuid[])", ids)
        return recorded == len(ids)
    await wait_for(all_recorded, 60, "every audit row")
    rows = await admin.fetch("SELECT id, EXTRACT(EPOCH FROM recorded_at)::float8 AS at FROM tenant.audit_event "
                             "WHERE id = ANY($1::uuid[])", ids)
    lags = [(r["at"] - committed[r["id"]]) * 1000 for r in rows]
    return {"events": total, "achieved_rate": total / produced_s, "p50_ms": pct(lags, 50), "p95_ms": pct(lags, 95),
            "p99_ms": pct(lags, 99), "max_ms": max(lags), "mean_ms": statistics.fmean(lags)}


async def burst_to_audit(admin, pool, n: int, org: uuid.UUID | None = None) -> dict:
    """N events committed at once, measured until the last audit row: relay + consumer throughput.
    Each event of a new organization (a chain head created per event), or all of one (``org``:
    one chain, appended a batch at a time)."""
    t0 = time.time()
    ids = await insert_pending(pool, n, org=org)

    async def all_recorded():
        return await admin.fetchval("SELECT count(*) FROM tenant.audit_event WHERE id = ANY($1::uuid[])", ids) == n
    await wait_for(all_recorded, 120, "the burst's audit rows")
    span = await admin.fetchval("SELECT EXTRACT(EPOCH FROM max(recorded_at))::float8 FROM tenant.audit_event "
                                "WHERE id = ANY($1::uuid[])", ids) - t0
    return {"events": n, "seconds": span, "rate": n / span}


# What a change bought, measured with this benchmark (a record, not rerun).
async def main(args) -> None:
    load_before = os.getloadavg()[0]
    exchange = f"events_bench_{uuid.uuid4().hex[:8]}"
    group = f"audit_bench_{uuid.uuid4().hex[:8]}"
    await prepare_database()
    admin = await asyncpg.connect(BENCH_ADMIN_DSN)
    pool = await asyncpg.create_pool(APP_DSN, min_size=1, max_size=2, server_settings={"search_path": "tenant"})
    procs: list[subprocess.Popen] = []
    try:
        runs = []
        for i in range(args.repeat):
            print(f"relay throughput, run {i + 1}/{args.repeat}: {args.events} pending events ...", flush=True)
            runs.append(await relay_throughput(admin, pool, exchange, args.events, args.batch_size, args.inflight))
        runs.sort(key=lambda r: r["rate_publishing"])
        throughput = runs[len(runs) // 2]
        spread = ", ".join(f"{r['rate_publishing']:,.0f}" for r in runs)

        port = free_port()
        audit = spawn([sys.executable, "-m", "tenant_service.audit"], {
            "AUDIT_PORT": str(port), "AUDIT_DATABASE_URL": APP_DSN, "EVENTS_EXCHANGE": exchange,
            "AUDIT_CONSUMER_GROUP": group, "LOG_LEVEL": "WARNING"})
        procs.append(audit)

        async def audit_ready():
            if audit.poll() is not None:
                raise SystemExit(f"bench: audit consumer exited: {audit.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as resp:
                    return resp.status == 200
            return False
        await wait_for(audit_ready, 30, "the audit consumer to be ready")
        relay = spawn([sys.executable, __file__, "--relay-process", exchange,
                       str(args.batch_size), str(args.inflight)], {})
        procs.append(relay)
        await asyncio.sleep(1.0)

        print(f"commit-to-audit lag: {args.rate} events/s for {args.seconds:.0f} s ...", flush=True)
        lag = await steady_lag(admin, pool, args.rate, args.seconds)
        print(f"burst through relay and audit consumer: {args.burst} events ...", flush=True)
        burst = await burst_to_audit(admin, pool, args.burst)
        print(f"burst of one organization through relay and audit consumer: {args.burst} events ...", flush=True)
        burst_one = await burst_to_audit(admin, pool, args.burst, org=uuid.uuid4())
    finally:
        for proc in procs:
            stop(proc)
        await pool.close()
        await admin.close()
        await delete_broker_objects(AMQP_URL, exchange=exchange, groups=[group])

    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = "\n".join([
        "| measure | result |",
        "|---|---|",
        f"| relay throughput, one relay, confirms, persistent to a quorum queue ({throughput['events']} events, "
        f"batch {throughput['batch_size']}, up to {throughput['inflight']} in flight; median of {len(runs)} runs) | "
        f"**{throughput['rate_publishing']:,.0f} events/s** first to last confirm (runs: {spread}); "
        f"{throughput['rate_wall']:,.0f} events/s including process start ({throughput['wall_s']:.2f} s) |",
        f"| commit → audit row lag at {args.rate} events/s for {args.seconds:.0f} s ({lag['events']} events, "
        f"achieved {lag['achieved_rate']:.0f}/s) | p50 **{lag['p50_ms']:.1f} ms**, p95 {lag['p95_ms']:.1f} ms, "
        f"p99 **{lag['p99_ms']:.1f} ms**, max {lag['max_ms']:.1f} ms |",
        f"| burst of {burst['events']} events, each of its own organization, commit → last audit row (relay + "
        f"audit consumer) | {burst['rate']:,.0f} events/s ({burst['seconds']:.2f} s) |",
        f"| burst of {burst_one['events']} events of one organization (one chain), commit → last audit row | "
        f"{burst_one['rate']:,.0f} events/s ({burst_one['seconds']:.2f} s) |",
    ])
    report = (f"# Event backbone benchmark\n\nMachine: {machine()}  \nDate: {date}  \n"
              f"PostgreSQL, RabbitMQ and the benchmark share the machine with other work: 1-minute load "
              f"average {load_before:.2f} before the run, {os.getloadavg()[0]:.2f} after.  \n"
              f"Command: `.venv/bin/python shared/bench/relay_bench.py --events {args.events} "
              f"--repeat {args.repeat} --rate {args.rate} "
              f"--seconds {args.seconds:.0f} --burst {args.burst}`\n\n{table}\n\n"
              "Relay and audit consumer each run in their own process (uvloop for the consumer, as in "
              "production); the producer writes one event per transaction for the lag test. Lag is "
              "`audit_event.recorded_at` (PostgreSQL clock) minus the producer's clock right after COMMIT, "
              "same host.\n" + kept_notes(RESULTS))
    RESULTS.write_text(report)
    print(table)
    print(f"\nwritten to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--relay-process":
        import uvloop
        uvloop.install()
        asyncio.run(relay_process(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=15000, help="pending events per throughput run")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (the median is reported)")
    parser.add_argument("--batch-size", type=int, default=200, help="relay batch size (RELAY_BATCH_SIZE)")
    parser.add_argument("--inflight", type=int, default=2,
                        help="relay batches in flight during a backlog (capped at a quarter of the pool)")
    parser.add_argument("--rate", type=int, default=200, help="events/s for the lag phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the lag phase")
    parser.add_argument("--burst", type=int, default=5000, help="events in the end-to-end burst")
    asyncio.run(main(parser.parse_args()))
