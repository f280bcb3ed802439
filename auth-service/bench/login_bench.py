"""Login and refresh throughput of the real auth-service, against the raw argon2 rate.

    .venv/bin/python auth-service/bench/login_bench.py [--seconds 15] [--concurrency N]

1. Raw argon2id verify rate with auth-service's parameters (its settings from this environment:
   m=19456 KiB, t=2, p=1 by default), on as many threads as auth-service hashes on, in this
   process: the ceiling for logins on this machine.
2. The real auth-service and tenant-service as separate processes (``python -m ...``) on the
   test database, Redis db 1 and a throwaway exchange; logins through HTTP at a concurrency
   of about the core count (each login = throttle check, one argon2 verify in the thread pool,
   the membership call to tenant-service, the session + outbox transaction, an EdDSA token).
3. Refresh rotation throughput (no argon2 on that path) with several independent sessions.

Writes the table to auth-service/bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "auth-service")]

from auth_service.config import Settings as AuthSettings  # noqa: E402
from auth_service.keys.ring import write_new_key  # noqa: E402
from auth_service.users.passwords import argon2_hasher, hashing_threads  # noqa: E402
from shared.messaging.testing import delete_broker_objects  # noqa: E402
from shared.testing import app_dsn, cpu_model, owner_dsn, prepare_test_database  # noqa: E402

PASSWORD = "bench passphrase that is long enough"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"


RAW_CPU: list[tuple[float, int]] = []  # (cpu seconds, hashes) of every raw phase


def proc_cpu_s(pid: int, main_thread_only: bool = False) -> float:
    """utime + stime in seconds: of a process (all its threads), or of its main thread only
    (an aiohttp process's event loop, without the argon2 worker threads)."""
    path = f"/proc/{pid}/task/{pid}/stat" if main_thread_only else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu(auth_pid: int, tenant_pid: int) -> collections.Counter:
    """CPU seconds so far of every process on the machine, grouped by role."""
    out: collections.Counter = collections.Counter()
    tck = os.sysconf("SC_CLK_TCK")
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            raw = (p / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        pid = int(p.name)
        group = ("auth-service" if pid == auth_pid else "tenant-service" if pid == tenant_pid
                 else "load generator" if pid == os.getpid() else "postgres" if comm == "postgres"
                 else "redis" if comm.startswith("redis") else "rabbitmq" if comm == "beam.smp" else "other")
        out[group] += (int(fields[11]) + int(fields[12])) / tck
    return out


def raw_argon2_rate(threads: int, seconds: float) -> float:
    ph = argon2_hasher(AuthSettings())  # the service's parameters (the same environment)
    stored = ph.hash(PASSWORD)
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        while time.perf_counter() < stop:
            ph.verify(stored, PASSWORD)
            counts[i] += 1
    started, cpu0 = time.perf_counter(), time.process_time()
    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    RAW_CPU.append((time.process_time() - cpu0, sum(counts)))
    return sum(counts) / (time.perf_counter() - started)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode}")
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


async def run_load(fn, *, concurrency: int, seconds: float) -> tuple[int, int, list[float]]:
    ok = failed = 0
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def worker(i: int):
        nonlocal ok, failed
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            if await fn(i):
                ok += 1
                latencies.append(time.perf_counter() - t0)
            else:
                failed += 1
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return ok, failed, latencies


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=0, help="login concurrency (default: core count)")
    ap.add_argument("--refresh-concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--raw-seconds", type=float, default=3.0)
    args = ap.parse_args()
    # The threads one auth-service worker hashes on (shared.cpu: the CPUs this process may use).
    settings = AuthSettings()
    cores = hashing_threads(settings) * settings.workers
    concurrency = args.concurrency or cores

    await prepare_test_database()
    tag = uuid.uuid4().hex[:8]
    exchange, group = f"bench_{tag}", f"auth-bench-{tag}"
    internal = secrets.token_urlsafe(24)
    auth_port, tenant_port = free_port(), free_port()
    keys = Path(tempfile.mkdtemp(prefix="auth-bench-keys-"))
    write_new_key(keys)
    pythonpath = f"{REPO / 'shared'}:{REPO / 'auth-service'}:{REPO / 'tenant-service'}"
    common = {**os.environ, "ENVIRONMENT": "development", "PYTHONPATH": pythonpath,
              "REDIS_URL": "redis://127.0.0.1:6379/1", "EVENTS_EXCHANGE": exchange, "INTERNAL_API_TOKEN": internal,
              "JWKS_URL": f"http://127.0.0.1:{auth_port}/.well-known/jwks.json", "LOG_LEVEL": "WARNING"}
    auth_env = {**common, "AUTH_PORT": str(auth_port), "AUTH_DATABASE_URL": app_dsn("auth"),
                "AUTH_MIGRATE_DATABASE_URL": owner_dsn("auth"), "AUTH_SIGNING_KEYS_DIR": str(keys),
                "AUTH_TENANT_URL": f"http://127.0.0.1:{tenant_port}", "AUTH_MEMBERSHIP_CONSUMER_GROUP": group,
                "AUTH_LOGIN_MAX_FAILURES_PER_IP": "1000000"}
    tenant_env = {**common, "TENANT_PORT": str(tenant_port), "TENANT_DATABASE_URL": app_dsn("tenant"),
                  "TENANT_MIGRATE_DATABASE_URL": owner_dsn("tenant"), "TENANT_USERS_CONSUMER_ENABLED": "false"}

    load_before = os.getloadavg()[0]
    procs = [subprocess.Popen([sys.executable, "-m", "tenant_service"], env=tenant_env, cwd=REPO,
                              stdout=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "auth_service"], env=auth_env, cwd=REPO,
                              stdout=subprocess.DEVNULL)]
    try:
        await wait_ready(f"http://127.0.0.1:{tenant_port}/health/live", procs[0])
        await wait_ready(f"http://127.0.0.1:{auth_port}/health/ready", procs[1])
        base = f"http://127.0.0.1:{auth_port}"
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn) as http:
            users = []
            for i in range(max(concurrency, args.refresh_concurrency)):
                email = f"bench-{tag}-{i}@example.com"
                async with http.post(f"{base}/v1/auth/signup", json={
                        "email": email, "password": PASSWORD, "name": f"Bench {i}",
                        "organization_name": f"Bench {tag} {i}"}) as r:
                    assert r.status == 201, await r.text()
                    users.append((email, (await r.json())["tokens"]["refresh_token"]))

            async def login(i: int) -> bool:
                async with http.post(f"{base}/v1/auth/login",
                                     json={"email": users[i][0], "password": PASSWORD}) as r:
                    await r.read()
                    return r.status == 200

            await run_load(login, concurrency=concurrency, seconds=2.0)  # warm-up
            # The machine is shared: raw hashing and logins are measured in alternation, and each
            # login phase is compared with the mean of the raw phases on either side of it.
            raw_rates = [raw_argon2_rate(cores, args.raw_seconds)]
            results = {}
            login_cpu, login_count = [0.0, 0.0, 0.0], 0
            everyone: collections.Counter = collections.Counter()
            for conc in (concurrency, 2 * concurrency):
                ok = failed = 0
                lat: list[float] = []
                elapsed = 0.0
                ratios = []
                for _ in range(args.rounds):
                    print(f"logins, concurrency {conc}, {args.seconds:.0f} s ...", flush=True)
                    t0 = time.perf_counter()
                    cpu0 = [proc_cpu_s(p.pid) for p in procs] + [proc_cpu_s(procs[1].pid, True)]
                    everyone0 = machine_cpu(procs[1].pid, procs[0].pid)
                    o, f, round_lat = await run_load(login, concurrency=conc, seconds=args.seconds)
                    dt = time.perf_counter() - t0
                    cpu1 = [proc_cpu_s(p.pid) for p in procs] + [proc_cpu_s(procs[1].pid, True)]
                    everyone.update(machine_cpu(procs[1].pid, procs[0].pid))
                    everyone.subtract(everyone0)
                    for k, (a, b) in enumerate(zip(cpu0, cpu1, strict=True)):
                        login_cpu[k] += b - a
                    login_count += o
                    raw_rates.append(raw_argon2_rate(cores, args.raw_seconds))
                    ratios.append((o / dt) / ((raw_rates[-1] + raw_rates[-2]) / 2))
                    ok, failed, elapsed = ok + o, failed + f, elapsed + dt
                    lat += round_lat
                results[conc] = (ok / elapsed, failed, lat, statistics.mean(ratios))
            raw_rate = statistics.mean(raw_rates)
            (login_rate, failed, lat, ratio), (login_rate2, failed2, lat2, ratio2) = results.values()

            chains = [u[1] for u in users[:args.refresh_concurrency]]

            async def refresh(i: int) -> bool:
                async with http.post(f"{base}/v1/auth/refresh", json={"refresh_token": chains[i]}) as r:
                    body = await r.json()
                    if r.status != 200:
                        return False
                    chains[i] = body["tokens"]["refresh_token"]
                    return True
            print(f"refreshes, concurrency {args.refresh_concurrency}, {args.seconds:.0f} s ...", flush=True)
            t0 = time.perf_counter()
            rok, rfailed, rlat = await run_load(refresh, concurrency=args.refresh_concurrency, seconds=args.seconds)
            refresh_rate = rok / (time.perf_counter() - t0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=25)
            except subprocess.TimeoutExpired:
                p.kill()
        await delete_broker_objects(AMQP, exchange=exchange, groups=[group])

    rows = [
        (f"raw argon2id verify (m={settings.argon2_memory_kib} KiB, t={settings.argon2_time_cost}, "
         f"p={settings.argon2_parallelism}), {cores} threads (mean of {len(raw_rates)} phases: "
         + ", ".join(f"{r:.1f}" for r in raw_rates) + ")", f"{raw_rate:.1f}/s", "", "", "100%"),
        (f"POST /v1/auth/login, concurrency {concurrency}", f"{login_rate:.1f}/s",
         f"{statistics.median(lat) * 1000:.1f}", f"{pct(lat, 0.99):.1f}", f"{ratio * 100:.1f}%"),
        (f"POST /v1/auth/login, concurrency {2 * concurrency}", f"{login_rate2:.1f}/s",
         f"{statistics.median(lat2) * 1000:.1f}", f"{pct(lat2, 0.99):.1f}", f"{ratio2 * 100:.1f}%"),
        (f"POST /v1/auth/refresh, concurrency {args.refresh_concurrency}", f"{refresh_rate:.1f}/s",
         f"{statistics.median(rlat) * 1000:.1f}", f"{pct(rlat, 0.99):.1f}", ""),
    ]
    hash_cpu_ms = sum(c for c, _ in RAW_CPU) / sum(n for _, n in RAW_CPU) * 1000
    tenant_ms, auth_ms, loop_ms = (x / login_count * 1000 for x in login_cpu)
    cpu_line = (f"- CPU per login (from /proc, all login phases): auth-service process {auth_ms:.1f} ms in all, of "
                f"which its event-loop thread (HTTP, Redis, SQL, signing, outbox relay) {loop_ms:.1f} ms and the "
                f"argon2 threads {auth_ms - loop_ms:.1f} ms (one verify cost {hash_cpu_ms:.1f} ms of CPU in the raw "
                f"phases); tenant-service {tenant_ms:.1f} ms (the membership call). PostgreSQL, Redis, RabbitMQ "
                f"and the load generator come on top")
    total_ms = sum(v for v in everyone.values() if v > 0) / login_count * 1000
    machine_line = ("- CPU of the whole machine per login during the login phases: " + ", ".join(
        f"{name} {secs / login_count * 1000:.1f} ms" for name, secs in sorted(everyone.items(), key=lambda x: -x[1])
        if secs > 0) + f"; total {total_ms:.1f} ms, of which one verify is {hash_cpu_ms:.1f} ms: with every core "
        f"busy, logins can reach at most {hash_cpu_ms / total_ms * 100:.0f}% of the raw hash rate on this machine")
    errors = failed + failed2 + rfailed
    table = ["| measurement | throughput | p50 ms | p99 ms | of hash-bound rate |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(r)} |" for r in rows]
    text = "\n".join([
        "# auth-service benchmark: login and refresh",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} cores (nproc; auth-service hashes on {cores} threads), {cpu_model()}; "
        f"Python {platform.python_version()}",
        f"- setup: real auth-service and tenant-service processes (`python -m ...`, one process each, uvloop), "
        f"PostgreSQL, Redis and RabbitMQ on the same machine, which also runs the load generator; "
        f"{args.rounds} x {args.seconds:.0f} s per login row, alternating with {args.raw_seconds:.0f} s raw-hash "
        f"phases (the percentage compares each login phase with the raw phases around it); "
        f"{args.seconds:.0f} s of refreshes; LOG_LEVEL=WARNING; load average before the run: {load_before:.2f} "
        f"(the machine is shared with other work); "
        f"non-200 answers during the runs: {errors}",
        "- every login does one argon2id verify with the production parameters, so the hash rate of the "
        "same machine (measured in the same run) is the ceiling",
        cpu_line,
        machine_line,
        "",
        *table,
        "",
        "Reading it: with as many logins in flight as cores, the argon2 threads sit idle while each login "
        "waits on Redis, PostgreSQL (commit) and tenant-service, so the hash-bound rate needs more logins "
        "in flight; with twice as many the run is CPU-bound, and the distance to the raw rate is the CPU "
        "of the non-hash work listed above (the event loop, tenant-service, and the database, Redis, broker "
        "and load generator sharing the same cores).",
        "",
        "Command: `.venv/bin/python auth-service/bench/login_bench.py`",
        "",
    ])
    print(text)
    (REPO / "auth-service" / "bench" / "RESULTS.md").write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
