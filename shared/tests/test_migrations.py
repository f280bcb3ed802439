"""The raw-SQL migrations runner against the real PostgreSQL, in a throwaway schema."""
import asyncio
import io
import uuid

import asyncpg
import pytest

from shared.migrations import MigrationError, Runner, cli, discover, new_migration
from shared.testing import admin_dsn


@pytest.fixture
async def schema():
    name = f"mig_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn())
    await conn.execute(f'CREATE SCHEMA "{name}"')
    yield name
    await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    await conn.close()


def write(d, version, name, up, down):
    (d / f"{version}_{name}.sql").write_text(f"-- migrate:up\n{up}\n-- migrate:down\n{down}\n")


async def tables(schema):
    conn = await asyncpg.connect(admin_dsn())
    try:
        rows = await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
        return {r["table_name"] for r in rows}
    finally:
        await conn.close()


async def test_up_down_status(tmp_path, schema):
    write(tmp_path, "20260101000001", "create_a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    write(tmp_path, "20260101000002", "create_b", "CREATE TABLE b (id int);", "DROP TABLE b;")
    out = io.StringIO()
    runner = Runner(admin_dsn(), schema, [tmp_path], out=out)
    assert await runner.up() == ["20260101000001", "20260101000002"]
    assert await tables(schema) == {"a", "b", "schema_migrations"}
    assert await runner.up() == []  # idempotent
    states = await runner.status()
    assert [s[2].split()[0] for s in states] == ["applied", "applied"]
    assert await runner.down(1) == ["20260101000002"]
    assert await tables(schema) == {"a", "schema_migrations"}
    assert [s[2].split()[0] for s in await runner.status()] == ["applied", "pending"]
    assert await runner.down(5) == ["20260101000001"]
    assert await tables(schema) == {"schema_migrations"}


async def test_failed_migration_rolls_back_entirely(tmp_path, schema):
    write(tmp_path, "20260101000001", "broken", "CREATE TABLE ok_part (id int); SELECT no_such_fn();", "")
    runner = Runner(admin_dsn(), schema, [tmp_path], out=io.StringIO())
    with pytest.raises(asyncpg.PostgresError):
        await runner.up()
    assert await tables(schema) == {"schema_migrations"}
    assert [s[2] for s in await runner.status()] == ["pending"]


async def test_edited_applied_file_is_refused(tmp_path, schema):
    write(tmp_path, "20260101000001", "create_a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    runner = Runner(admin_dsn(), schema, [tmp_path], out=io.StringIO())
    await runner.up()
    write(tmp_path, "20260101000001", "create_a", "CREATE TABLE a (id bigint);", "DROP TABLE a;")
    write(tmp_path, "20260101000002", "create_b", "CREATE TABLE b (id int);", "DROP TABLE b;")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        await runner.up()
    assert "b" not in await tables(schema)
    assert [s[2].split()[0] for s in await runner.status()] == ["EDITED", "pending"]


async def test_two_runners_at_once_apply_once(tmp_path, schema):
    # A slow migration: without the advisory lock the second runner would apply it again and fail.
    write(tmp_path, "20260101000001", "slow", "SELECT pg_sleep(0.3); CREATE TABLE once (id int);", "DROP TABLE once;")
    write(tmp_path, "20260101000002", "more", "CREATE TABLE twice_guard (id int);", "DROP TABLE twice_guard;")
    r1 = Runner(admin_dsn(), schema, [tmp_path], out=io.StringIO())
    r2 = Runner(admin_dsn(), schema, [tmp_path], out=io.StringIO())
    done1, done2 = await asyncio.gather(r1.up(), r2.up())
    assert sorted(done1 + done2) == ["20260101000001", "20260101000002"]
    assert [] in (done1, done2)
    conn = await asyncpg.connect(admin_dsn())
    try:
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') == 2
    finally:
        await conn.close()


def test_bad_files_are_refused(tmp_path):
    (tmp_path / "20260101000001_no_down.sql").write_text("-- migrate:up\nSELECT 1;\n")
    with pytest.raises(MigrationError, match="needs both"):
        discover([tmp_path])


def test_new_creates_a_timestamped_file(tmp_path):
    path = new_migration(tmp_path, "Add ticket index!")
    assert path.name.endswith("_add_ticket_index.sql") and len(path.name.split("_")[0]) == 14
    text = path.read_text()
    assert "-- migrate:up" in text and "-- migrate:down" in text


def test_cli_reports_refusal_with_exit_code(tmp_path, capsys):
    (tmp_path / "bad-name.sql").write_text("x")
    code = cli(["status"], dsn=admin_dsn(), schema="public", own_dir=tmp_path, shared=False)
    assert code == 1
    assert "migration files are named" in capsys.readouterr().err


async def index_state(schema, name):
    conn = await asyncpg.connect(admin_dsn())
    try:
        return await conn.fetchrow(
            "SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2", schema, name)
    finally:
        await conn.close()


async def test_transaction_false_header_allows_create_index_concurrently(tmp_path, schema):
    write(tmp_path, "20260101000001", "create_t",
          "CREATE TABLE t (id int, note text);\nINSERT INTO t SELECT g, 'a;b' FROM generate_series(1, 100) g;",
          "DROP TABLE t;")
    (tmp_path / "20260101000002_index_t.sql").write_text(
        "-- migrate:up transaction:false\n"
        "-- a comment; with a semicolon\n"
        "DROP INDEX CONCURRENTLY IF EXISTS t_note_idx;\n"
        "CREATE INDEX CONCURRENTLY t_note_idx ON t (note) WHERE note <> ';';\n"
        "/* trailing; comment */\n"
        "-- migrate:down transaction:false\n"
        "DROP INDEX CONCURRENTLY IF EXISTS t_note_idx;\n")
    runner = Runner(admin_dsn(), schema, [tmp_path], out=io.StringIO())
    assert await runner.up() == ["20260101000001", "20260101000002"]
    assert (await index_state(schema, "t_note_idx"))["valid"] is True
    assert await runner.down(1) == ["20260101000002"]
    assert await index_state(schema, "t_note_idx") is None
    assert [s[2].split()[0] for s in await runner.status()] == ["applied", "pending"]


async def test_concurrently_without_the_header_is_refused_by_postgres(tmp_path, schema):
    # The header is what makes it work: inside the migration's transaction PostgreSQL refuses.
    write(tmp_path, "20260101000001", "create_t", "CREATE TABLE t (id int);", "DROP TABLE t;")
    write(tmp_path, "20260101000002", "index_t", "CREATE INDEX CONCURRENTLY t_id_idx ON t (id);", "")
    runner = Runner(admin_dsn(), schema, [tmp_path], out=io.StringIO())
    with pytest.raises(asyncpg.ActiveSQLTransactionError):
        await runner.up()
    assert [s[2].split()[0] for s in await runner.status()] == ["applied", "pending"]


def test_unknown_section_option_is_refused(tmp_path):
    (tmp_path / "20260101000001_x.sql").write_text("-- migrate:up transaction:maybe\nSELECT 1;\n-- migrate:down\n")
    from shared.migrations import discover
    with pytest.raises(MigrationError):
        discover([tmp_path])


def test_split_statements_respects_quotes_and_dollar_bodies():
    from shared.migrations import split_statements
    sql = ("CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$ BEGIN RETURN 1; END $fn$;\n"
           "SELECT 'it''s; fine', \"odd;name\" FROM x; -- done; really\n"
           "SELECT $$a;b$$;")
    assert split_statements(sql) == [
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$ BEGIN RETURN 1; END $fn$",
        "SELECT 'it''s; fine', \"odd;name\" FROM x",
        "-- done; really\nSELECT $$a;b$$"]   # a comment stays with the statement after it


def test_migrations_dir_setting_overrides_the_package_folder(tmp_path, schema, capsys, monkeypatch):
    # The container image installs the packages and copies migrations/ elsewhere.
    from shared.config import BaseServiceSettings
    from shared.service import main
    write(tmp_path, "20260101000001", "create_a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    monkeypatch.setenv("MIGRATIONS_DIR", str(tmp_path))
    monkeypatch.setenv("MIGRATE_DATABASE_URL", admin_dsn())
    monkeypatch.setenv("DB_SCHEMA", schema)
    assert main(BaseServiceSettings, None, app_path="x", migrations_dir=None, argv=["migrate", "status"]) == 0
    assert "20260101000001_create_a: pending" in capsys.readouterr().out
