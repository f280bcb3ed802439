"""Start the whole stack the way `make run` starts it (deploy/run_local.py: every process
under gunicorn), on its own ports, database, Redis db and exchange, for end-to-end tests
and drills."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from shared.dbsetup import drop_database
from shared.dbsetup import setup as db_setup
from shared.migrations import SHARED_MIGRATIONS, Runner
from shared.testing import (
    ADMIN_DSN,
    AMQP_HOST,
    AMQP_PORT,
    AMQP_URL,
    DB_PREFIX,
    PG_HOSTPORT,
    PORT_OFFSET,
    REDIS_HOST,
    REDIS_PORT,
    SERVICE_MIGRATIONS,
    TcpProxy,
    amqp_url_via,
    redis_url,
)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


class ThreadedProxy:
    """A TcpProxy on its own event loop in its own thread, so it keeps forwarding whatever the
    test's loop is doing; ``cut()``/``restore()`` simulate the server going away and back."""

    def __init__(self, host: str, port: int):
        import asyncio
        import threading
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = TcpProxy(host, port)
        self._call(self.proxy.start())
        self.port = self.proxy.port

    def _call(self, coro):
        import asyncio
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def cut(self) -> None:
        self._call(self.proxy.cut())

    def restore(self) -> None:
        self._call(self.proxy.restore())

    def retarget(self, host: str, port: int) -> None:
        """From now on forward to another server (every current connection is dropped)."""
        self.cut()
        self.proxy.target = (host, port)
        self.restore()

    def close(self) -> None:
        self._call(self.proxy.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


class Stack:
    """``port_base`` and the replica ports above it (+100, +200, +300) must stay below the
    kernel's ephemeral range (32768 and up on Linux): there an outgoing connection may hold the
    port and the stack cannot bind it. End-to-end tests use 18080, drills 28080, the load
    benchmark 29080. ``TEST_PORT_OFFSET`` moves all of them, and ``TEST_DB_PREFIX`` the database
    (``<prefix>_<name>``), so several checkouts can run their stacks side by side."""

    def __init__(self, *, database: str = "e2e", port_base: int = 18080, ticket_replicas: int = 1,
                 redis_db: int = 3, extra_env: dict | None = None, seed: bool = False, proxied: bool = False,
                 pgbouncer: bool = False):
        database, port_base = f"{DB_PREFIX}_{database}", port_base + PORT_OFFSET
        self.database, self.port_base, self.redis_db = database, port_base, redis_db
        self.exchange = f"events_e2e_{uuid.uuid4().hex[:8]}"
        self.keys_dir = tempfile.mkdtemp(prefix="saas-e2e-keys-")
        p = port_base
        pg_host, pg_port = PG_HOSTPORT.split(":")
        # With proxied=True every process reaches PostgreSQL, Redis and RabbitMQ through a proxy
        # the fault drills can cut, without disturbing anything else on the machine.
        self.proxies = {}
        self.redis_target = (REDIS_HOST, REDIS_PORT)
        if proxied:
            self.proxies = {"postgres": ThreadedProxy(pg_host, int(pg_port)),
                            "redis": ThreadedProxy(REDIS_HOST, REDIS_PORT),
                            "rabbitmq": ThreadedProxy(AMQP_HOST, AMQP_PORT)}
        pg = f"127.0.0.1:{self.proxies['postgres'].port}" if proxied else PG_HOSTPORT
        redis_port = self.proxies["redis"].port if proxied else REDIS_PORT
        amqp_url = amqp_url_via(self.proxies["rabbitmq"].port) if proxied else AMQP_URL
        self.env = {
            **os.environ,
            "ENVIRONMENT": "development",  # the shipped dev-* secrets; production refuses them
            "GATEWAY_PORT": str(p), "AUTH_PORT": str(p + 1), "TENANT_PORT": str(p + 2),
            "TICKET_PORT": str(p + 3), "AUDIT_PORT": str(p + 4),
            "TICKET_REPLICAS": str(ticket_replicas),
            "JWKS_URL": f"http://127.0.0.1:{p + 1}/.well-known/jwks.json",
            "AUTH_TENANT_URL": f"http://127.0.0.1:{p + 2}",
            "TENANT_AUTH_URL": f"http://127.0.0.1:{p + 1}",
            "REDIS_URL": redis_url(redis_db, redis_port),
            "AMQP_URL": amqp_url,
            "EVENTS_EXCHANGE": self.exchange,
            "AUTH_SIGNING_KEYS_DIR": self.keys_dir,
            "SEED": "1" if seed else "0",
            "READY_TIMEOUT_S": "90",
            "LOG_LEVEL": os.environ.get("E2E_LOG_LEVEL", "WARNING"),
            "RELAY_POLL_INTERVAL_S": "0.5",
            # Every test client is 127.0.0.1: the per-address public limit would throttle the
            # suite itself (gateway/tests cover the limits).
            "GATEWAY_RATE_LIMIT_PUBLIC": "100000",
            "GATEWAY_RATE_LIMIT_USER": "100000",
            "GATEWAY_RATE_LIMIT_BAD_TOKENS": "100000",
        }
        for schema, prefix in (("auth", "AUTH"), ("tenant", "TENANT"), ("ticket", "TICKET")):
            self.env[f"{prefix}_DATABASE_URL"] = f"postgresql://{schema}_app@{pg}/{database}"
            self.env[f"{prefix}_MIGRATE_DATABASE_URL"] = f"postgresql://{schema}_owner@{PG_HOSTPORT}/{database}"
        self.env["AUDIT_DATABASE_URL"] = self.env["TENANT_DATABASE_URL"]
        # With pgbouncer=True the services' pools go through a PgBouncer of the stack's own in
        # transaction pooling mode (migrations and setup stay direct, as in production).
        self.pgbouncer = None
        if pgbouncer:
            from shared.pgbouncer import PgBouncerProcess
            # Server connections per role: enough not to queue the relay and consumers (and spare the shared server).
            self.pgbouncer = PgBouncerProcess(pg, port=p + 10, pool_size=8)
            for schema, prefix in (("auth", "AUTH"), ("tenant", "TENANT"), ("ticket", "TICKET"), ("tenant", "AUDIT")):
                self.env[f"{prefix}_DATABASE_URL"] = f"postgresql://{schema}_app@127.0.0.1:{p + 10}/{database}"
                self.env[f"{prefix}_DB_TRANSACTION_POOLING"] = "true"
            # Queues of their own: the end-to-end stack may run at the same time on the same
            # vhost, and competing consumers would carry events to the other stack's database.
            for var, group in (("AUTH_MEMBERSHIP_CONSUMER_GROUP", "auth-service.memberships"),
                               ("TENANT_USERS_CONSUMER_GROUP", "tenant-service.users"),
                               ("TICKET_MEMBERSHIP_CONSUMER_GROUP", "ticket-service.memberships"),
                               ("AUDIT_CONSUMER_GROUP", "audit")):
                self.env.setdefault(var, f"{group}.pgbouncer")
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="saas-e2e-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"

    async def drop_database(self) -> None:
        """Drop the stack's database (benchmarks start from an empty one and leave none behind)."""
        await drop_database(ADMIN_DSN, self.database)

    async def prepare(self) -> None:
        await db_setup(ADMIN_DSN, self.database)
        for schema, own in SERVICE_MIGRATIONS.items():
            await Runner(f"postgresql://{schema}_owner@{PG_HOSTPORT}/{self.database}", schema,
                         [SHARED_MIGRATIONS, own], out=open(os.devnull, "w")).up()
        subprocess.run([PY, "-m", "auth_service", "keys", "ensure"], env=self.env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        direct = {**self.env, "AMQP_URL": AMQP_URL}
        for module in ("auth_service", "tenant_service", "tenant_service.audit", "ticket_service"):
            subprocess.run([PY, "-m", module, "declare-queues"], env=direct, cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)

    def start(self, timeout: float = 90) -> None:
        if self.pgbouncer is not None:
            self.pgbouncer.start()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PY, str(ROOT / "deploy" / "run_local.py")], env=self.env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stack exited early; log: {self.log_path}\n{self.tail()}")
            if "press Ctrl-C to stop" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise RuntimeError(f"stack not ready in {timeout}s; log: {self.log_path}\n{self.tail()}")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health/ready", timeout=1) as r:
                return r.status == 200 and json.loads(r.read()).get("status") == "ok"
        except (OSError, ValueError):
            return False

    def stop(self, timeout: float = 40) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return -9
        finally:
            self.log.close()
            for proxy in self.proxies.values():
                proxy.close()
            if self.pgbouncer is not None:
                self.pgbouncer.stop()

    def listening_ports(self) -> list[int]:
        """This stack's ports something still listens on (should be none after stop)."""
        import socket
        ports = [self.port_base + i for i in range(5)] + [self.port_base + 3 + 100 * i for i in range(1, 4)]
        listening = []
        for port in ports:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    listening.append(port)
        return listening
