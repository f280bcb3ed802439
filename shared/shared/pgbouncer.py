"""PgBouncer in transaction pooling mode: its configuration, and a process for tests and the
bench (the distribution's ``pgbouncer`` binary, see deploy/ensure-servers.sh).

The services reach it with ``<PREFIX>_DB_TRANSACTION_POOLING=true`` (shared.db: no statement
cache, no start-up session settings). Migrations, dbsetup and backups connect directly: they
hold session state (advisory locks, search_path) that a transaction pooler cannot carry.

    python -m shared.pgbouncer --port 6432 --server 127.0.0.1:5432 --dir /tmp/pgb   # writes the config
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP_ROLES = ("auth_app", "tenant_app", "ticket_app")


def find_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer") if os.access(p, os.X_OK)), None)


def render_config(*, directory: Path, port: int, server_host: str, server_port: int,
                  listen_addr: str = "127.0.0.1", auth_type: str = "trust", pool_size: int = 20,
                  max_client_conn: int = 1000) -> str:
    """pgbouncer.ini. ``pool_size`` server connections per (database, role): the figure that
    replaces the sum of every replica's DB_POOL_MAX in the PostgreSQL connection budget."""
    return f"""\
[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = {listen_addr}
listen_port = {port}
unix_socket_dir =
auth_type = {auth_type}
auth_file = {directory / "userlist.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = {max_client_conn}
; Nothing to reset between transactions: the services only set transaction-local settings.
server_reset_query =
ignore_startup_parameters = extra_float_digits
admin_users = pgbouncer
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
"""


def render_userlist(passwords: dict[str, str]) -> str:
    return "".join(f'"{role}" "{password}"\n' for role, password in passwords.items())


class PgBouncerProcess:
    """A PgBouncer of its own on a free port (tests, bench); stopped with ``stop()``."""

    def __init__(self, server_hostport: str, *, port: int = 0, pool_size: int = 20):
        binary = find_binary()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (bash deploy/ensure-servers.sh installs it)")
        self.binary: str = binary
        host, server_port = server_hostport.rsplit(":", 1)
        self.port = port or _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.dir.chmod(0o755)   # pgbouncer drops root privileges (-u postgres) and must read it
        (self.dir / "pgbouncer.ini").write_text(render_config(
            directory=self.dir, port=self.port, server_host=host, server_port=int(server_port),
            pool_size=pool_size))
        (self.dir / "userlist.txt").write_text(render_userlist({r: "" for r in (*APP_ROLES, "pgbouncer")}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> PgBouncerProcess:
        cmd = [self.binary, str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            cmd[1:1] = ["-u", "postgres"]   # it refuses to run as root
            shutil.chown(self.dir, "postgres")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self.log()}")

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)   # immediate shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.pgbouncer", description="Write pgbouncer.ini and userlist.txt")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--port", type=int, default=6432)
    p.add_argument("--listen", default="0.0.0.0")
    p.add_argument("--server", default="127.0.0.1:5432", help="PostgreSQL host:port")
    p.add_argument("--auth-type", default="scram-sha-256")
    p.add_argument("--pool-size", type=int, default=20)
    args = p.parse_args(argv)
    host, port = args.server.rsplit(":", 1)
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "pgbouncer.ini").write_text(render_config(
        directory=args.dir, port=args.port, server_host=host, server_port=int(port), listen_addr=args.listen,
        auth_type=args.auth_type, pool_size=args.pool_size))
    # Passwords of the application roles, from the same variables shared.dbsetup reads.
    passwords = {r: os.environ.get(f"{r.split('_')[0].upper()}_APP_DB_PASSWORD", "") for r in APP_ROLES}
    userlist = args.dir / "userlist.txt"
    userlist.write_text(render_userlist(passwords))
    userlist.chmod(0o600)
    print(f"pgbouncer: wrote {args.dir / 'pgbouncer.ini'} and {userlist}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
