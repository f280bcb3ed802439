"""Idempotent database setup, run as a PostgreSQL superuser before migrations.

For every service schema it creates the schema and three roles:
- ``<schema>_owner`` owns the schema and runs the migrations;
- ``<schema>_app`` is what the service connects as: USAGE on its own schema only, DML on
  its tables through default privileges, nothing on any other schema, no BYPASSRLS;
- ``<schema>_definer`` (no login, no BYPASSRLS) owns the few SECURITY DEFINER functions a
  migration creates, with only the grants and policies that migration gives it (for example
  ticket full-text search, which cannot use its index under the tenant policy).
Every role is (re)set to NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION (and
LOGIN or NOLOGIN) on every run, so a role that already existed with other attributes is
corrected, and the app role is made a member of no other role (it must never act as the owner
of its tables).
Passwords come from ``<SCHEMA>_OWNER_DB_PASSWORD`` / ``<SCHEMA>_APP_DB_PASSWORD`` when set
(local development on a trust-auth server needs none).

    python -m shared.dbsetup --database saas [--schemas auth,tenant,ticket]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence

import asyncpg

SCHEMAS = ("auth", "tenant", "ticket")


def _check(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"dbsetup: bad identifier {name!r}")
    return name


ROLE_ATTRIBUTES = "NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None, login: bool = True) -> None:
    attributes = ("LOGIN " if login else "NOLOGIN ") + ROLE_ATTRIBUTES
    try:
        await conn.execute(await conn.fetchval(f"SELECT format('CREATE ROLE %I {attributes}', $1::text)", role))
    except asyncpg.DuplicateObjectError:
        pass
    # An existing role keeps whatever it was given by hand: set every attribute again.
    await conn.execute(await conn.fetchval(f"SELECT format('ALTER ROLE %I {attributes}', $1::text)", role))
    if password:
        await conn.execute(await conn.fetchval("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
                                               role, password))


async def _drop_memberships(conn: asyncpg.Connection, role: str) -> None:
    """The role belongs to no other role (a member of the owner role could act as the owner)."""
    for (granted,) in await conn.fetch(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1", role):
        await conn.execute(await conn.fetchval("SELECT format('REVOKE %I FROM %I', $1::text, $2::text)",
                                               granted, role))


async def ensure_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            try:
                await conn.execute(await conn.fetchval("SELECT format('CREATE DATABASE %I', $1::text)", database))
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                pass
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, database: str) -> None:
    """Drop ``database`` if it exists, closing its sessions (benchmarks and tests that start
    from an empty database)."""
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await conn.execute(await conn.fetchval("SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text)",
                                               database))
    finally:
        await conn.close()


async def setup(admin_dsn: str, database: str, schemas: Sequence[str] = SCHEMAS) -> None:
    database = _check(database)
    await ensure_database(admin_dsn, database)
    # Connect to the target database with the same credentials.
    target = re.sub(r"/[^/?]*(\?|$)", f"/{database}\\1", admin_dsn.split("://", 1)[1], count=1)
    conn = await asyncpg.connect(admin_dsn.split("://", 1)[0] + "://" + target, timeout=10)
    try:
        # Serialise concurrent setups (parallel test runs) on one lock.
        await conn.execute("SELECT pg_advisory_lock(hashtext('saas-dbsetup'))")
        await conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for schema in map(_check, schemas):
            owner, app, definer = f"{schema}_owner", f"{schema}_app", f"{schema}_definer"
            await _ensure_role(conn, owner, os.environ.get(f"{schema.upper()}_OWNER_DB_PASSWORD"))
            await _ensure_role(conn, app, os.environ.get(f"{schema.upper()}_APP_DB_PASSWORD"))
            await _ensure_role(conn, definer, None, login=False)
            await _drop_memberships(conn, app)
            for role in (owner, app):
                await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{owner}"')
            await conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{owner}"')
            await conn.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC')
            await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{app}"')
            # The owner hands functions to the definer role (ALTER FUNCTION ... OWNER TO needs
            # membership, and CREATE on the schema for the new owner); nobody logs in as it.
            # NOINHERIT: the owner is a member of the definer role without holding what it holds,
            # so a policy written for the definer never applies to the owner's own queries.
            await conn.execute(f'GRANT CREATE, USAGE ON SCHEMA "{schema}" TO "{definer}"')
            await conn.execute(f'ALTER ROLE "{owner}" NOINHERIT')
            await conn.execute(f'GRANT "{definer}" TO "{owner}"')
            await conn.execute(f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA "{schema}" '
                               f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{app}"')
            await conn.execute(f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA "{schema}" '
                               f'GRANT USAGE, SELECT ON SEQUENCES TO "{app}"')
            # Session defaults of the application role, for connections that cannot send them at
            # start-up (PgBouncer in transaction mode, DB_TRANSACTION_POOLING); a direct
            # connection's own settings override them.
            for name, value in (("search_path", schema), ("statement_timeout", "5s"),
                                ("idle_in_transaction_session_timeout", "10s")):
                await conn.execute(f'ALTER ROLE "{app}" IN DATABASE "{database}" SET {name} TO \'{value}\'')
        await conn.execute("SELECT pg_advisory_unlock(hashtext('saas-dbsetup'))")
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.dbsetup")
    p.add_argument("--admin-url", default=os.environ.get("ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--database", default=os.environ.get("DATABASE_NAME", "saas"))
    p.add_argument("--schemas", default=",".join(SCHEMAS))
    args = p.parse_args(argv)
    try:
        asyncio.run(setup(args.admin_url, args.database, [s for s in args.schemas.split(",") if s]))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"dbsetup: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"dbsetup: database {args.database} ready with schemas {args.schemas}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
