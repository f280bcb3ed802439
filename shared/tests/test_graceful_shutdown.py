"""SIGTERM under gunicorn: stop accepting, let in-flight requests finish, exit cleanly."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_live(url: str, proc, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                async with session.get(url + "/health/live") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("server did not start")


async def test_sigterm_drains_in_flight_requests_and_exits_cleanly():
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WORKERS": "2", "SHUTDOWN_TIMEOUT_S": "10",
           "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(HERE / "slow_app.py"), "serve"], cwd=HERE, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_live(url, proc)
        async with aiohttp.ClientSession() as session:
            in_flight = asyncio.create_task(session.get(url + "/slow?s=1.5"))
            await asyncio.sleep(0.4)
            os.kill(proc.pid, signal.SIGTERM)
            resp = await in_flight
            assert resp.status == 200
            assert await resp.json() == {"done": True}
        code = await asyncio.to_thread(proc.wait, 20)
        assert code == 0
        # Nothing listens any more and no worker was left behind.
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
        leftover = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert leftover == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
