"""`make backup` / `make restore` (deploy/backup.py): a populated database round-trips into
another database with the same rows, and the application roles work on the copy exactly as
on the original (grants, row-level security, migrations state)."""
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.dbsetup import drop_database
from shared.dbsetup import setup as db_setup
from shared.migrations import SHARED_MIGRATIONS, Runner
from shared.testing import ADMIN_DSN, DB_PREFIX, PG_HOSTPORT, SERVICE_MIGRATIONS

ROOT = Path(__file__).resolve().parent.parent
SOURCE, TARGET, TARGET_ONE = f"{DB_PREFIX}_backup_src", f"{DB_PREFIX}_backup_dst", f"{DB_PREFIX}_backup_one"
ORGS, TICKETS_PER_ORG, USERS = 4, 30, 12


def dsn(role: str, database: str) -> str:
    return f"postgresql://{role}@{PG_HOSTPORT}/{database}"


def admin(database: str) -> str:
    return dsn("postgres", database)


async def row_counts(database: str) -> dict[str, int]:
    conn = await asyncpg.connect(admin(database))
    try:
        tables = await conn.fetch("SELECT table_schema, table_name FROM information_schema.tables "
                                  "WHERE table_schema = ANY($1) AND table_type = 'BASE TABLE'",
                                  list(SERVICE_MIGRATIONS))
        return {f"{t['table_schema']}.{t['table_name']}":
                await conn.fetchval(f'SELECT count(*) FROM "{t["table_schema"]}"."{t["table_name"]}"')
                for t in tables}
    finally:
        await conn.close()


async def populate(database: str) -> list[uuid.UUID]:
    """Rows written the way the services write them: as the application roles, tickets under
    row-level security."""
    auth = await asyncpg.connect(dsn("auth_app", database))
    try:
        for i in range(USERS):
            await auth.execute(
                "INSERT INTO auth.user_account (id, email, name, password_hash) VALUES ($1, $2, $3, 'x')",
                uuid.uuid4(), f"user{i}@example.com", f"User {i}")
    finally:
        await auth.close()
    orgs = [uuid.uuid4() for _ in range(ORGS)]
    tenant = await asyncpg.connect(dsn("tenant_app", database))
    try:
        for i, org in enumerate(orgs):
            await tenant.execute("INSERT INTO tenant.organization (id, name, slug) VALUES ($1, $2, $3)",
                                 org, f"Org {i}", f"org-{i}-{org.hex[:6]}")
    finally:
        await tenant.close()
    ticket = await asyncpg.connect(dsn("ticket_app", database))
    try:
        for org in orgs:
            async with ticket.transaction():
                await ticket.execute("SELECT set_config('app.tenant_id', $1, true)", str(org))
                for n in range(1, TICKETS_PER_ORG + 1):
                    await ticket.execute("INSERT INTO ticket.ticket (id, org_id, number, title, requester_id) "
                                         "VALUES ($1, $2, $3, $4, $5)", uuid.uuid4(), org, n, f"t{n}", uuid.uuid4())
    finally:
        await ticket.close()
    return orgs


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "deploy" / "backup.py"), "--admin-url", ADMIN_DSN, *args],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
async def source():
    for db in (SOURCE, TARGET, TARGET_ONE):
        await drop_database(ADMIN_DSN, db)
    await db_setup(ADMIN_DSN, SOURCE)
    for schema, own in SERVICE_MIGRATIONS.items():
        await Runner(dsn(f"{schema}_owner", SOURCE), schema, [SHARED_MIGRATIONS, own],
                     out=open("/dev/null", "w")).up()
    orgs = await populate(SOURCE)
    yield orgs
    for db in (SOURCE, TARGET, TARGET_ONE):
        await drop_database(ADMIN_DSN, db)


async def test_whole_database_round_trip_keeps_rows_and_working_roles(source, tmp_path):
    orgs = source
    dump = Path(cli("backup", "--database", SOURCE, "--dir", str(tmp_path)))
    assert dump.exists() and dump.read_bytes()[:5] == b"PGDMP"   # pg_dump's custom format
    cli("restore", str(dump), "--database", TARGET)
    before, after = await row_counts(SOURCE), await row_counts(TARGET)
    assert after == before
    assert before["ticket.ticket"] == ORGS * TICKETS_PER_ORG and before["auth.user_account"] == USERS

    ticket = await asyncpg.connect(dsn("ticket_app", TARGET))
    try:
        # Row-level security survived: no tenant scope, no rows; one scope, that tenant's rows.
        assert await ticket.fetchval("SELECT count(*) FROM ticket.ticket") == 0
        async with ticket.transaction():
            await ticket.execute("SELECT set_config('app.tenant_id', $1, true)", str(orgs[0]))
            assert await ticket.fetchval("SELECT count(*) FROM ticket.ticket") == TICKETS_PER_ORG
            # Grants survived: the application role still writes.
            await ticket.execute("INSERT INTO ticket.ticket (id, org_id, number, title, requester_id) "
                                 "VALUES ($1, $2, $3, 'after restore', $4)",
                                 uuid.uuid4(), orgs[0], TICKETS_PER_ORG + 1, uuid.uuid4())
        # Least privilege survived: the ticket role sees nothing of another schema.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ticket.fetchval("SELECT count(*) FROM auth.user_account")
    finally:
        await ticket.close()
    auth = await asyncpg.connect(dsn("auth_app", TARGET))
    try:
        assert await auth.fetchval("SELECT count(*) FROM auth.user_account") == USERS
    finally:
        await auth.close()
    # The migrations state came along: nothing to apply on the copy.
    for schema, own in SERVICE_MIGRATIONS.items():
        assert await Runner(dsn(f"{schema}_owner", TARGET), schema, [SHARED_MIGRATIONS, own],
                            out=open("/dev/null", "w")).up() == []


async def test_one_schema_round_trip(source, tmp_path):
    dump = Path(cli("backup", "--database", SOURCE, "--schema", "ticket", "--dir", str(tmp_path)))
    assert "-ticket-" in dump.name
    cli("restore", str(dump), "--database", TARGET_ONE)
    before, after = await row_counts(SOURCE), await row_counts(TARGET_ONE)
    assert {k: v for k, v in after.items() if k.startswith("ticket.")} == \
           {k: v for k, v in before.items() if k.startswith("ticket.")}
    assert not any(k.startswith("auth.") for k in after)   # only the ticket schema was in the backup
    ticket = await asyncpg.connect(dsn("ticket_app", TARGET_ONE))
    try:
        async with ticket.transaction():
            await ticket.execute("SELECT set_config('app.tenant_id', $1, true)", str(source[1]))
            assert await ticket.fetchval("SELECT count(*) FROM ticket.ticket") == TICKETS_PER_ORG
    finally:
        await ticket.close()
