"""ENVIRONMENT=production (the default): each of the five processes, started as a real
subprocess, refuses to start (non-zero exit, a message naming the setting) while a secret is at
its development default, shorter than 32 bytes or reused for another purpose; with proper
secrets it starts and answers /health/live against the real PostgreSQL, Redis and RabbitMQ."""
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from shared.testing import AMQP_URL, PORT_OFFSET, app_dsn, redis_url

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# process, module, env prefix, schema of its app role, its own cursor secret
PROCESSES = [
    ("gateway", "gateway", "GATEWAY", None, None),
    ("auth-service", "auth_service", "AUTH", "auth", "AUTH_CURSOR_SECRET"),
    ("tenant-service", "tenant_service", "TENANT", "tenant", "TENANT_CURSOR_SECRET"),
    ("ticket-service", "ticket_service", "TICKET", "ticket", "TICKET_CURSOR_SECRET"),
    ("audit-consumer", "tenant_service.audit", "AUDIT", "tenant", None),
]
IDS = [p[0] for p in PROCESSES]
SECRET_NAMES = ("INTERNAL_API_TOKEN", "AUTH_CURSOR_SECRET", "TENANT_CURSOR_SECRET", "TICKET_CURSOR_SECRET")


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    subprocess.run([PY, "-m", "auth_service", "keys", "ensure"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "ENVIRONMENT": "development", "AUTH_SIGNING_KEYS_DIR": str(path)})
    return str(path)


def base_env(prefix: str, schema: str | None, port: int, keys_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES and k != "ENVIRONMENT"}
    env.update({
        # The broker as a deployment names it: not the built-in guest@127.0.0.1 default, which
        # production refuses (tested below).
        f"{prefix}_PORT": str(port), "REDIS_URL": redis_url(5),
        "AMQP_URL": AMQP_URL.replace("@127.0.0.1:", "@localhost:"),
        "EVENTS_EXCHANGE": f"prod_check_{uuid.uuid4().hex[:8]}", "AUTH_SIGNING_KEYS_DIR": keys_dir,
        "RELAY_ENABLED": "false", "LOG_LEVEL": "WARNING", "DB_CONNECT_ATTEMPTS": "3",
        f"{prefix}_DB_CONNECT_ATTEMPTS": "3",
    })
    if schema:
        env[f"{prefix}_DATABASE_URL"] = app_dsn(schema)
    return env


def good_secrets() -> dict:
    return {name: secrets.token_urlsafe(32) for name in SECRET_NAMES}


def refused(module: str, env: dict, *args: str) -> str:
    """Start the process; it must exit non-zero on its own. Returns its stderr."""
    proc = subprocess.run([PY, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, f"{module} started: {proc.stderr[-2000:]}"
    return proc.stderr


def port_for(index: int) -> int:
    return 23100 + PORT_OFFSET + index


@pytest.mark.parametrize("name,module,prefix,schema,cursor", PROCESSES, ids=IDS)
def test_production_refuses_development_defaults(name, module, prefix, schema, cursor, keys_dir):
    env = {**base_env(prefix, schema, port_for(IDS.index(name)), keys_dir), "ENVIRONMENT": "production"}
    err = refused(module, env)
    assert "INTERNAL_API_TOKEN" in err and "development default" in err, err
    if cursor:
        assert cursor in err, err
    # Unset ENVIRONMENT means production too.
    env.pop("ENVIRONMENT")
    assert "INTERNAL_API_TOKEN" in refused(module, env)


@pytest.mark.parametrize("name,module,prefix,schema,cursor", PROCESSES, ids=IDS)
def test_production_refuses_a_short_or_reused_secret(name, module, prefix, schema, cursor, keys_dir):
    env = {**base_env(prefix, schema, port_for(IDS.index(name)), keys_dir), "ENVIRONMENT": "production",
           **good_secrets()}
    target = cursor or "INTERNAL_API_TOKEN"
    env[target] = "x" * 31
    err = refused(module, env)
    assert f"{target} is shorter than 32 bytes" in err, err
    if cursor:
        env[cursor] = env["INTERNAL_API_TOKEN"]
        err = refused(module, env)
        assert cursor in err and "INTERNAL_API_TOKEN" in err and "separate secret" in err, err


def test_production_refuses_under_gunicorn_too(keys_dir):
    env = {**base_env("TICKET", "ticket", port_for(7), keys_dir), "ENVIRONMENT": "production", **good_secrets()}
    env["TICKET_CURSOR_SECRET"] = "dev-ticket-cursor-secret-change-me"
    assert "TICKET_CURSOR_SECRET has its development default" in refused("ticket_service", env, "serve")


@pytest.mark.parametrize("name,module,prefix,schema,cursor", PROCESSES, ids=IDS)
def test_production_starts_with_proper_secrets(name, module, prefix, schema, cursor, keys_dir):
    port = port_for(10 + IDS.index(name))
    env = {**base_env(prefix, schema, port, keys_dir), "ENVIRONMENT": "production", **good_secrets()}
    proc = subprocess.Popen([PY, "-m", module], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline, live = time.monotonic() + 60, False
        while time.monotonic() < deadline and proc.poll() is None and not live:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1) as resp:
                    live = resp.status == 200
            except OSError:
                time.sleep(0.3)
        assert live, f"{name} did not start: exit {proc.poll()}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        err = proc.stderr.read()
    assert code == 0, err[-2000:]
    assert "refusing" not in err


def test_production_refuses_the_built_in_broker_url(keys_dir):
    env = {**base_env("TICKET", "ticket", port_for(8), keys_dir), "ENVIRONMENT": "production", **good_secrets()}
    env.pop("AMQP_URL")
    assert "AMQP_URL has its development default" in refused("ticket_service", env)
