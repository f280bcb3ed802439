"""Two real gunicorn workers: one scrape sees both workers' counters (prometheus-client
multiprocess mode, each worker under its own pid), every line the process writes is JSON,
request lines carrying the request id, and each worker's garbage collector is tuned."""
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

HERE = Path(__file__).resolve().parent
REQUESTS = 120


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_live(url: str, proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "server exited"
            try:
                async with session.get(url + "/health/live") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("server did not start")


def stale_counter(directory: Path) -> None:
    """Leave files of an earlier run in the directory: they must not count in this one."""
    code = ("from shared.web import HTTP_REQUESTS; "
            "HTTP_REQUESTS.labels('slow-app', 'GET', '/pid', '200').inc(1000)")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)})
    assert list(directory.glob("*.db"))


def requests_counted(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("http_requests_total{") and 'route="/pid"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("given_dir", [False, True], ids=["default-dir", "PROMETHEUS_MULTIPROC_DIR"])
async def test_two_workers_counters_add_up_and_every_line_is_json(tmp_path, given_dir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"PORT": str(port), "WORKERS": "2", "SHUTDOWN_TIMEOUT_S": "5", "LOG_LEVEL": "INFO",
                "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    if given_dir:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        stale_counter(metrics_dir)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    out_path = tmp_path / "out.log"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(HERE / "slow_app.py"), "serve"], cwd=HERE, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_live(url, proc)
        pids: set[int] = set()
        request_ids: set[str] = set()

        async def one(i: int) -> None:
            # A new connection each time, so both workers accept some.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
                async with session.get(url + "/pid", headers={"X-Request-ID": f"req-{i:08d}"}) as r:
                    assert r.status == 200
                    pids.add((await r.json())["pid"])
                    request_ids.add(r.headers["X-Request-ID"])
        # Which worker accepts a connection is the kernel's choice: one worker may take a whole
        # burst, so batches go on (up to a bound) until both have answered.
        sent, deadline = 0, time.monotonic() + 30
        while sent < REQUESTS or (len(pids) < 2 and time.monotonic() < deadline and sent < 20 * REQUESTS):
            await asyncio.gather(*(one(i) for i in range(sent, sent + 20)))
            sent += 20
        assert len(pids) == 2, "both workers must have served requests for this test to mean anything"
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/metrics") as r:
                metrics = await r.text()
            # Every worker tuned its garbage collector once its app was built (shared.service.tune_gc).
            for _ in range(4):
                async with session.get(url + "/gc") as r:
                    state = await r.json()
                assert state["pid"] in pids and state["threshold"] == 10_000 and state["frozen"] > 1000, state
        assert requests_counted(metrics) == sent
        os.kill(proc.pid, signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines = [ln for ln in out_path.read_text().splitlines() if ln.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    gunicorn_lines = [r for r in records if r["logger"].startswith("gunicorn")]
    assert any("Booting worker" in r["msg"] for r in gunicorn_lines)
    assert all(r["service"] == "slow-app" for r in records)
    inside = [r for r in records if r["logger"] == "slow_app"]
    assert len(inside) == sent
    # The handler's own line (not only the per-request line) carries the request's id.
    assert {r["request_id"] for r in inside} == request_ids
    assert {r["pid"] for r in inside} == pids
