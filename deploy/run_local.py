"""Run the whole stack as local processes in the foreground (what `make run` ends with).

Each process runs under gunicorn with aiohttp's uvloop worker, its output prefixed with its
name. Once the gateway is ready the demo organization is seeded (idempotent). Ctrl-C or
SIGTERM stops every process (and its workers) cleanly; nothing is left behind.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# name, module, environment prefix, default port
PROCESSES = [
    ("auth", "auth_service", "AUTH", 8081),
    ("tenant", "tenant_service", "TENANT", 8082),
    ("audit", "tenant_service.audit", "AUDIT", 8084),
    ("ticket", "ticket_service", "TICKET", 8083),
    ("gateway", "gateway", "GATEWAY", 8080),
]
UPSTREAM_OF = {"AUTH": "GATEWAY_AUTH_UPSTREAMS", "TENANT": "GATEWAY_TENANT_UPSTREAMS",
               "TICKET": "GATEWAY_TICKET_UPSTREAMS"}


def plan(env: dict) -> list[tuple[str, list[str], dict]]:
    """One entry per process replica. ``<PREFIX>_REPLICAS=N`` runs N copies, replica i on the
    base port + 100*i, and the gateway's upstream list names every replica."""
    out, env = [], dict(env)
    # Each process keeps its metrics files in a directory of its own (shared.service picks one
    # per service and port); one inherited directory would mix and wipe the processes' files.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    for name, module, prefix, default_port in PROCESSES:
        base = int(env.get(f"{prefix}_PORT", default_port))
        replicas = int(env.get(f"{prefix}_REPLICAS", "1"))
        ports = [base + 100 * i for i in range(replicas)]
        if prefix in UPSTREAM_OF and UPSTREAM_OF[prefix] not in env:
            host = env.get(f"{prefix}_HOST", "127.0.0.1")
            host = "127.0.0.1" if host in ("0.0.0.0", "") else host
            env[UPSTREAM_OF[prefix]] = ",".join(f"http://{host}:{p}" for p in ports)
        for i, port in enumerate(ports):
            label = name if replicas == 1 else f"{name}-{i + 1}"
            out.append((label, [PY, "-m", module, "serve"], {f"{prefix}_PORT": str(port)}))
    return [(label, cmd, {**env, **extra}) for label, cmd, extra in out]


COLORS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m"]
READY_URL = os.environ.get("READY_URL", f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}/health/ready")
_print_lock = threading.Lock()


def pump(name: str, color: str, stream) -> None:
    tty = sys.stdout.isatty()
    prefix = f"{color}{name:>8} |\033[0m " if tty else f"{name:>8} | "
    for raw in iter(stream.readline, b""):
        with _print_lock:
            sys.stdout.write(prefix + raw.decode(errors="replace"))
            sys.stdout.flush()


def wait_ready(procs, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for _, p in procs):
            return False
        try:
            with urllib.request.urlopen(READY_URL, timeout=1) as resp:
                # The gateway stays ready (200) while degraded; the stack is up when it is "ok".
                if resp.status == 200 and json.loads(resp.read()).get("status") == "ok":
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    return False


def stop(procs, grace: float = 20.0) -> None:
    for _, p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for _, p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for _, p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the group: gunicorn workers included
        except ProcessLookupError:
            pass


def spawn(name: str, cmd: list[str], env: dict, color: str) -> subprocess.Popen:
    # Own process group per process so a stop reaches gunicorn's workers too.
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    threading.Thread(target=pump, args=(name, color, p.stdout), daemon=True).start()
    return p


def main() -> int:
    stopping = threading.Event()

    def on_signal(signum, _frame):
        stopping.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    # A local run is development unless the caller says otherwise: the shipped dev-* secrets are
    # then accepted with a warning (README "Configuration"). ENVIRONMENT=production make run
    # checks the secrets as a deployment does.
    specs = plan({"ENVIRONMENT": "development", **os.environ})
    colors = {name: COLORS[i % len(COLORS)] for i, (name, _, _) in enumerate(specs)}
    procs = [(name, spawn(name, cmd, env, colors[name])) for name, cmd, env in specs]

    code = 0
    if wait_ready(procs, float(os.environ.get("READY_TIMEOUT_S", "60"))):
        print(f"     run | stack ready: {READY_URL}", flush=True)
        if os.environ.get("SEED", "1") == "1":
            seeded = subprocess.run([PY, str(ROOT / "deploy" / "seed.py")], cwd=ROOT)
            if seeded.returncode != 0:
                print("     run | seeding failed (the stack keeps running)", flush=True)
        print("     run | press Ctrl-C to stop", flush=True)
        restarts: dict[str, list[float]] = {}
        while not stopping.is_set() and code == 0:
            for i, (name, p) in enumerate(procs):
                if p.poll() is None or stopping.is_set():
                    continue
                # Like an orchestrator: a process that died is started again; a crash loop
                # (5 deaths in a minute) stops the stack.
                recent = [t for t in restarts.get(name, []) if time.monotonic() - t < 60] + [time.monotonic()]
                restarts[name] = recent
                if len(recent) > 5:
                    print(f"     run | {name} keeps exiting ({p.returncode}); stopping", flush=True)
                    code = 1
                    break
                print(f"     run | {name} exited with {p.returncode}; restarting", flush=True)
                _, cmd, env = next(spec for spec in specs if spec[0] == name)
                procs[i] = (name, spawn(name, cmd, env, colors[name]))
            stopping.wait(0.5)
    else:
        if not stopping.is_set():
            print("     run | the stack did not become ready; stopping", flush=True)
            code = 1
    print("     run | stopping every process", flush=True)
    stop(procs)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
