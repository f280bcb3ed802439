"""System load benchmark (`make bench`).

Starts the stack the way `make run` does (its own database and ports), seeds a data set
through the public API (progress bar), drives the gateway over loopback with wrk (and a
Python generator for refresh, whose tokens chain), and measures in the same run the floors
that bound each figure on this machine: a bare aiohttp handler, one asyncpg primary-key
query, one argon2 hash. Writes deploy/bench/RESULTS.md.

    make bench            # BENCH_SECONDS=10 BENCH_TICKETS=5000 by default
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.testing import DB_PREFIX, PG_HOSTPORT, cpu_model  # noqa: E402
from tests.e2e.api import PASSWORD, expect, join, scope, signup  # noqa: E402
from tests.stack import Stack  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
TICKETS = int(os.environ.get("BENCH_TICKETS", "5000"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
DATABASE = f"{DB_PREFIX}_bench_load"  # Stack(database="bench_load") adds the prefix
WORDS = ["printer", "invoice", "login", "password", "export", "dashboard", "mobile", "email", "billing", "slow",
         "crash", "refund", "upgrade", "network", "vpn", "laptop", "license", "report", "sync", "calendar"]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# ------------------------------------------------------------------ wrk

def wrk(url: str, *, lua: str, seconds: int = SECONDS, connections: int = CONNECTIONS) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, url],
                         capture_output=True, text=True).stdout
    os.unlink(f.name)

    def ms(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "errors": int(non2xx.group(1)) if non2xx else 0,
            "requests": total}


def lua_request(method: str, paths: list[str], token: str | None, bodies: list[str] | None = None) -> str:
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if token:
        headers += f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    return (f"{headers}local paths = {{{', '.join(json.dumps(p) for p in paths)}}}\n"
            f"local bodies = {{{', '.join(json.dumps(b) for b in bodies or [])}}}\n"
            "request = function()\n"
            "  local p = paths[math.random(#paths)]\n"
            "  local body = nil\n"
            "  if #bodies > 0 then body = bodies[math.random(#bodies)] end\n"
            f"  return wrk.format({json.dumps(method)}, p, nil, body)\n"
            "end\n")


# ------------------------------------------------------------------ floors

BARE_APP = '''
from aiohttp import web
async def handler(request):
    return web.json_response({"ok": True})
async def app():
    a = web.Application()
    a.router.add_get("/", handler)
    return a
'''


def floor_bare_aiohttp() -> dict:
    d = tempfile.mkdtemp()
    Path(d, "bare_app.py").write_text(BARE_APP)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "bare_app:app", "-k", "aiohttp.GunicornUVLoopWebWorker",
                             "-w", "1", "-b", f"127.0.0.1:{port}"], cwd=d, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        return wrk(f"http://127.0.0.1:{port}/", lua=lua_request("GET", ["/"], None))
    finally:
        proc.terminate()
        proc.wait()


async def floor_pk_query(ids: list[str]) -> dict:
    pool = await asyncpg.create_pool(f"postgresql://postgres@{PG_HOSTPORT}/{DATABASE}", min_size=CONNECTIONS,
                                     max_size=CONNECTIONS)
    latencies: list[float] = []
    deadline = time.monotonic() + SECONDS / 2

    async def worker():
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            async with pool.acquire() as conn:
                await conn.fetchrow("SELECT * FROM ticket.ticket WHERE id = $1", uuid.UUID(random.choice(ids)))
            latencies.append((time.perf_counter() - t0) * 1000)
    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    elapsed = time.monotonic() - started
    await pool.close()
    return {"rps": len(latencies) / elapsed, "p50": pct(latencies, 50), "p99": pct(latencies, 99)}


async def settle() -> None:
    """Let the machine finish the stack's after-work (audit rows, WAL) before measuring floors,
    so a floor is not measured against leftover load."""
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOSTPORT}/{DATABASE}")
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    await asyncio.sleep(5)


def floor_argon2() -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from argon2 import PasswordHasher
    memory = int(os.environ.get("AUTH_ARGON2_MEMORY_COST", "19456"))
    t_cost = int(os.environ.get("AUTH_ARGON2_TIME_COST", "2"))
    ph = PasswordHasher(time_cost=t_cost, memory_cost=memory, parallelism=1)
    done, latencies = 0, []
    deadline = time.monotonic() + SECONDS / 2

    def worker():
        nonlocal done
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            ph.hash("benchmark-password-1")
            latencies.append((time.perf_counter() - t0) * 1000)
            done += 1
    started = time.monotonic()
    with ThreadPoolExecutor(os.cpu_count()) as ex:
        for f in [ex.submit(worker) for _ in range(os.cpu_count())]:
            f.result()
    return {"rps": done / (time.monotonic() - started), "p50": pct(latencies, 50), "p99": pct(latencies, 99)}


# ------------------------------------------------------------------ seeding and scenarios

async def seed(base: str) -> dict:
    async with aiohttp.ClientSession(base_url=base) as http:
        owner = await signup(http, "bench-owner", org_name=f"Bench {uuid.uuid4().hex[:6]}")
        owner = await scope(http, owner, owner.org_id)
        agent = await join(http, owner, "agent")
        ids: list[str] = []
        sem = asyncio.Semaphore(16)
        bar = tqdm(total=TICKETS, desc="seeding tickets", unit="ticket")

        async def create(i):
            async with sem:
                words = random.sample(WORDS, 3)
                body = {"title": f"{words[0]} {words[1]} issue {i}", "description": " ".join(random.sample(WORDS, 8)),
                        "priority": random.choice(["low", "normal", "high", "urgent"]), "tags": words[:2]}
                t = await expect(await http.post("/v1/tickets", headers=owner.auth, json=body), 201)
                ids.append(t["id"])
                bar.update()
        await asyncio.gather(*(create(i) for i in range(TICKETS)))
        bar.close()
        # Logins are spread over several accounts, as real traffic is: parallel attempts on one
        # account count against its throttle while in flight.
        users = [await signup(http, f"bench-login-{i}") for i in range(CONNECTIONS * 2)]
        return {"owner": owner, "agent": agent, "ids": ids, "users": users}


async def refresh_load(base: str, users: list) -> dict:
    latencies: list[float] = []
    deadline = time.monotonic() + SECONDS

    async def worker(user, http):
        token = user.refresh
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            async with http.post("/v1/auth/refresh", json={"refresh_token": token}) as r:
                body = await r.json()
                assert r.status == 200, body
            token = body["tokens"]["refresh_token"]
            latencies.append((time.perf_counter() - t0) * 1000)
    started = time.monotonic()
    async with aiohttp.ClientSession(base_url=base, connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(worker(u, http) for u in users))
    return {"rps": len(latencies) / (time.monotonic() - started), "p50": pct(latencies, 50), "p99": pct(latencies, 99),
            "errors": 0}


def stack_memory(root_pid: int) -> dict[str, tuple[int, float]]:
    """Resident memory of every process under the stack's supervisor, by process name:
    (processes, total RSS in MiB) — a gunicorn master and its worker count as one name."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    names = {"auth_service": "auth-service", "tenant_service.audit": "audit consumer",
             "tenant_service": "tenant-service", "ticket_service": "ticket-service", "gateway": "gateway"}
    out: dict[str, tuple[int, float]] = {}
    stack = list(children.get(root_pid, []))
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            rss_kib = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        name = next((label for module, label in names.items() if f"-m {module} " in cmd + " "), None)
        if name:
            n, mib = out.get(name, (0, 0.0))
            out[name] = (n + 1, mib + rss_kib / 1024)
    return out


async def event_lag(since: float) -> dict:
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOSTPORT}/{DATABASE}")
    try:
        rows = await conn.fetch(
            "SELECT EXTRACT(EPOCH FROM recorded_at - occurred_at) * 1000 AS lag FROM tenant.audit_event "
            "WHERE type = 'ticket.created' AND occurred_at >= to_timestamp($1)", since)
    finally:
        await conn.close()
    lags = [float(r["lag"]) for r in rows]
    return {"events": len(lags), "p50": pct(lags, 50), "p99": pct(lags, 99)}


def main() -> int:
    if not shutil.which("wrk"):
        print("bench: wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 1
    stack = Stack(database="bench_load", port_base=29080, redis_db=5, extra_env={
        "LOG_LEVEL": "WARNING", "GATEWAY_RATE_LIMIT_PUBLIC": "100000000", "GATEWAY_RATE_LIMIT_USER": "100000000",
        "AUTH_LOGIN_MAX_FAILURES_PER_IP": "1000000"})
    asyncio.run(stack.prepare())
    stack.start()
    results: dict[str, dict] = {}
    try:
        data = asyncio.run(seed(stack.url))
        owner, ids = data["owner"], data["ids"]
        token = owner.access
        results["GET /v1/tickets/{id}"] = wrk(stack.url, lua=lua_request("GET", [f"/v1/tickets/{i}" for i in ids[:2000]], token))
        results["GET /v1/tickets (first page)"] = wrk(stack.url, lua=lua_request("GET", ["/v1/tickets?limit=20"], token))
        results["GET /v1/tickets?q=…&status=open (search)"] = wrk(stack.url, lua=lua_request(
            "GET", [f"/v1/tickets?q={w}&status=open&limit=20" for w in WORDS], token))
        since = time.time()
        results["POST /v1/tickets"] = wrk(stack.url, lua=lua_request(
            "POST", ["/v1/tickets"], token, [json.dumps({"title": "load test ticket", "description": "created by wrk"})]))
        time.sleep(3)
        lag = asyncio.run(event_lag(since))
        results["POST /v1/auth/login"] = wrk(stack.url, lua=lua_request(
            "POST", ["/v1/auth/login"], None, [json.dumps({"email": u.email, "password": PASSWORD})
                                               for u in data["users"]]))

        async def refresh_users():
            async with aiohttp.ClientSession(base_url=stack.url) as http:
                out = []
                for user in data["users"][:CONNECTIONS]:
                    body = await expect(await http.post("/v1/auth/login", json={"email": user.email,
                                                                                "password": PASSWORD}), 200)
                    out.append(type(owner)(user.id, user.email, body["tokens"]["access_token"],
                                           body["tokens"]["refresh_token"]))
                return out
        results["POST /v1/auth/refresh"] = asyncio.run(refresh_load(stack.url, asyncio.run(refresh_users())))
        memory = stack_memory(stack.proc.pid)  # after every scenario: the high-water mark of the run
    finally:
        stack.stop()
    asyncio.run(settle())
    floors = {"bare aiohttp handler": floor_bare_aiohttp(), "asyncpg primary-key query": asyncio.run(floor_pk_query(ids)),
              "argon2id hash": floor_argon2()}
    floor_of = {"GET /v1/tickets/{id}": "asyncpg primary-key query", "GET /v1/tickets (first page)": "bare aiohttp handler",
                "GET /v1/tickets?q=…&status=open (search)": "bare aiohttp handler", "POST /v1/tickets": "bare aiohttp handler",
                "POST /v1/auth/login": "argon2id hash", "POST /v1/auth/refresh": "bare aiohttp handler"}
    cpu = cpu_model()
    lines = [
        "# Load benchmark", "",
        f"`make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, one gunicorn worker per process, load generator on the same machine "
        f"(wrk -t1 -c{CONNECTIONS}, {SECONDS} s per scenario; refresh by a Python client with {CONNECTIONS} chained sessions). "
        f"Data set: {len(ids)} tickets seeded through the API; logins spread over {len(data['users'])} accounts.", "",
        "| scenario | req/s | p50 ms | p99 ms | non-2xx | floor | floor req/s | ratio to floor |",
        "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        f = floors[floor_of[name]]
        lines.append(f"| {name} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r.get('errors', 0)} | "
                     f"{floor_of[name]} | {f['rps']:.0f} | {r['rps'] / f['rps']:.2f} |")
    lines += ["", "| floor | ops/s | p50 ms | p99 ms |", "|---|---|---|---|"]
    for name, f in floors.items():
        lines.append(f"| {name} | {f['rps']:.0f} | {f['p50']:.2f} | {f['p99']:.2f} |")
    lines += ["", "Memory after the run (resident set, gunicorn master + one worker per process):", "",
              "| process | OS processes | RSS MiB |", "|---|---|---|"]
    for name, (n, mib) in sorted(memory.items()):
        lines.append(f"| {name} | {n} | {mib:.0f} |")
    lines += ["", f"Event lag, commit to audit row, for the {lag['events']} tickets created under load: "
                  f"p50 {lag['p50']:.0f} ms, p99 {lag['p99']:.0f} ms.", ""]
    report = "\n".join(lines)
    print(report)
    (Path(__file__).resolve().parent / "RESULTS.md").write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
