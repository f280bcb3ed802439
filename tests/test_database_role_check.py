"""Row-level security holds only if the service's role cannot bypass it. Each service checks at
start-up (shared.db.check_least_privilege) and refuses to start, naming the problem, when its
role is a superuser, has BYPASSRLS, or owns its tables; started here as real subprocesses
against the real PostgreSQL. And shared.dbsetup corrects a role that already existed."""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.db import role_problems
from shared.dbsetup import setup as db_setup
from shared.testing import (
    ADMIN_DSN,
    AMQP_URL,
    PG_HOSTPORT,
    PORT_OFFSET,
    TEST_DATABASE,
    admin_dsn,
    app_dsn,
    owner_dsn,
    redis_url,
)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVICES = [("auth_service", "AUTH", "auth"), ("tenant_service", "TENANT", "tenant"),
            ("ticket_service", "TICKET", "ticket"), ("tenant_service.audit", "AUDIT", "tenant")]


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    subprocess.run([PY, "-m", "auth_service", "keys", "ensure"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "ENVIRONMENT": "development", "AUTH_SIGNING_KEYS_DIR": str(path)})
    return str(path)


def start(module: str, prefix: str, dsn: str, port: int, keys_dir: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ENVIRONMENT": "development", "AUTH_SIGNING_KEYS_DIR": keys_dir,
           f"{prefix}_DATABASE_URL": dsn, f"{prefix}_PORT": str(port),
           f"{prefix}_DB_CONNECT_ATTEMPTS": "2", "REDIS_URL": redis_url(5), "AMQP_URL": AMQP_URL,
           "EVENTS_EXCHANGE": f"role_check_{uuid.uuid4().hex[:8]}", "RELAY_ENABLED": "false",
           "AUTH_MEMBERSHIP_CONSUMER_ENABLED": "false", "TENANT_USERS_CONSUMER_ENABLED": "false",
           "TICKET_CONSUMERS_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    return subprocess.run([PY, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
async def bypass_role():
    """A login role with BYPASSRLS and only the app role's grants, dropped afterwards."""
    name = f"rls_bypass_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn())
    try:
        await conn.execute(f'CREATE ROLE "{name}" LOGIN BYPASSRLS')
        await conn.execute(f'GRANT CONNECT ON DATABASE "{TEST_DATABASE}" TO "{name}"')
        for schema in ("auth", "tenant", "ticket"):
            await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{name}"')
            await conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{name}"')
        yield name
    finally:
        await conn.execute(f'DROP OWNED BY "{name}"')
        await conn.execute(f'DROP ROLE "{name}"')
        await conn.close()


@pytest.mark.parametrize("module,prefix,schema", SERVICES, ids=[s[0] for s in SERVICES])
def test_a_service_refuses_its_tables_owner_and_a_bypassrls_role(module, prefix, schema, bypass_role, keys_dir):
    port = 23300 + PORT_OFFSET + SERVICES.index((module, prefix, schema))
    owner = start(module, prefix, owner_dsn(schema), port, keys_dir)
    assert owner.returncode != 0
    assert f"{prefix}_DATABASE_URL" in owner.stderr, owner.stderr[-3000:]
    assert f"role {schema}_owner owns" in owner.stderr, owner.stderr[-3000:]
    bypass = start(module, prefix, f"postgresql://{bypass_role}@{PG_HOSTPORT}/{TEST_DATABASE}", port, keys_dir)
    assert bypass.returncode != 0
    assert f"role {bypass_role} has BYPASSRLS" in bypass.stderr, bypass.stderr[-3000:]
    assert "Traceback" not in bypass.stderr


def test_a_superuser_is_refused(keys_dir):
    proc = start("ticket_service", "TICKET", admin_dsn(), 23310 + PORT_OFFSET, keys_dir)
    assert proc.returncode != 0 and "role postgres is a superuser" in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("schema", ["auth", "tenant", "ticket"])
async def test_the_app_roles_pass_the_check(schema):
    conn = await asyncpg.connect(app_dsn(schema))
    try:
        assert await role_problems(conn, schema) == []
    finally:
        await conn.close()


async def test_dbsetup_resets_a_role_that_already_existed():
    schema = f"s11_{uuid.uuid4().hex[:10]}"
    app, owner = f"{schema}_app", f"{schema}_owner"
    admin = await asyncpg.connect(admin_dsn())
    try:
        # As if made by hand, or by an older setup: every attribute an app role must not have.
        await admin.execute(f'CREATE ROLE "{owner}" LOGIN')
        await admin.execute(f'CREATE ROLE "{app}" LOGIN SUPERUSER BYPASSRLS CREATEDB CREATEROLE REPLICATION')
        await admin.execute(f'GRANT "{owner}" TO "{app}"')
        await db_setup(ADMIN_DSN, TEST_DATABASE, [schema])
        for role in (app, owner):
            flags = await admin.fetchrow(
                "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication "
                "FROM pg_roles WHERE rolname = $1", role)
            assert dict(flags) == {"rolcanlogin": True, "rolsuper": False, "rolbypassrls": False,
                                   "rolcreatedb": False, "rolcreaterole": False, "rolreplication": False}, role
        assert await admin.fetchval(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1",
            app) == 0
        conn = await asyncpg.connect(f"postgresql://{app}@{PG_HOSTPORT}/{TEST_DATABASE}")
        try:
            assert await role_problems(conn, schema) == []
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for role in (app, owner):
            await admin.execute(f'DROP OWNED BY "{role}"')
            await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()


def test_gunicorn_refuses_too(keys_dir):
    proc = start("ticket_service", "TICKET", owner_dsn("ticket"), 23311 + PORT_OFFSET, keys_dir, "serve")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "role ticket_owner owns tables of schema ticket" in out, out[-3000:]
