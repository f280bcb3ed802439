"""deploy/ensure-servers.sh on a machine where nothing is installed: it names the packages and
prints the exact install command (here forced with ENSURE_SERVERS_PRINT_ONLY, as for a
non-root user), and stops without starting anything."""
import os
import shutil
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("bash", "id", "ls", "sort", "tail", "head", "cat", "grep", "sleep", "sh", "mv", "chown", "printf")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_machine(tmp_path: Path, *, apt: bool = True) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    if apt:
        (bin_dir / "apt-get").write_text("#!/bin/sh\necho apt-get must not run >&2; exit 99\n")
        (bin_dir / "apt-get").chmod(0o755)
    return {"PATH": str(bin_dir), "ENSURE_SERVERS_SBIN_DIRS": str(tmp_path / "none"),
            "PG_PORT": str(closed_port()), "REDIS_PORT": str(closed_port()), "AMQP_PORT": str(closed_port())}


def run(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "deploy" / "ensure-servers.sh")], env=env, capture_output=True,
                          text=True, timeout=30, executable=shutil.which("bash"))


def test_nothing_installed_prints_the_exact_apt_command_and_stops(tmp_path):
    done = run({**bare_machine(tmp_path), "ENSURE_SERVERS_PRINT_ONLY": "1"})
    assert done.returncode == 1
    assert ("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
            "postgresql postgresql-client redis-server rabbitmq-server pgbouncer") in done.stdout
    assert "must not run" not in done.stderr


def test_servers_that_answer_are_not_installed(tmp_path):
    env = bare_machine(tmp_path)
    env.update({"PG_PORT": "5432", "REDIS_PORT": os.environ.get("TEST_REDIS_HOSTPORT", ":6379").split(":")[1],
                "AMQP_PORT": "5672", "ENSURE_SERVERS_PRINT_ONLY": "1"})
    done = run(env)
    # Only the tools remain missing (no PATH to them here); the running servers are left alone.
    assert "postgresql-client pgbouncer" in done.stdout
    assert "redis-server" not in done.stdout and "rabbitmq-server" not in done.stdout
    assert "install -y postgresql " not in done.stdout


def test_without_apt_it_names_what_is_missing(tmp_path):
    done = run(bare_machine(tmp_path, apt=False))
    assert done.returncode == 1
    assert "not installed: postgresql" in done.stderr
