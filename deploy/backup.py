"""Backup and restore with pg_dump's custom format (`make backup`, `make restore`).

    python deploy/backup.py backup  [--database saas] [--schema ticket] [--dir backups]
    python deploy/backup.py restore FILE [--database saas_restored]

A backup is the whole database, or one service's schema (`--schema`): tables, data, indexes,
row-level-security policies, grants and default privileges, and `schema_migrations` (so the
migrations runner knows where the restored schema stands). Roles are cluster-wide and not in a
dump: `restore` first runs shared.dbsetup on the target (database, `<schema>_owner` and
`<schema>_app` roles, their passwords from the usual variables, connect grants, role defaults),
then pg_restore in one transaction, replacing the schemas the backup holds (--clean). Stop the
services that write to the target first (or restore into a new database and repoint them).

Both connect as a PostgreSQL superuser: ADMIN_DATABASE_URL (as for shared.dbsetup).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from shared.dbsetup import SCHEMAS, setup

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url(admin_url: str, database: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the PostgreSQL client (apt-get install postgresql-client)")
    return found


def backup(admin_url: str, database: str, schema: str | None, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = directory / f"{database}{'-' + schema if schema else ''}-{stamp}.dump"
    cmd = [tool("pg_dump"), "--format=custom", "--file", str(path), "--dbname", database_url(admin_url, database)]
    if schema:
        cmd += ["--schema", schema]
    subprocess.run(cmd, check=True)
    return path


def dumped_schemas(path: Path) -> list[str]:
    listing = subprocess.run([tool("pg_restore"), "--list", str(path)], check=True, capture_output=True,
                             text=True).stdout
    found = []
    for line in listing.splitlines():
        # "123; 2615 16390 SCHEMA - ticket ticket_owner"
        if not line.startswith(";") and " SCHEMA - " in line:
            name = line.split(" SCHEMA - ", 1)[1].split()[0]
            if name in SCHEMAS:
                found.append(name)
    return found


def restore(admin_url: str, path: Path, database: str) -> list[str]:
    schemas = dumped_schemas(path)
    if not schemas:
        raise SystemExit(f"{path}: no service schema ({', '.join(SCHEMAS)}) in this backup")
    # Roles, database and grants first (idempotent), for every service schema so that a
    # per-schema restore into a new database still leaves a complete one.
    asyncio.run(setup(admin_url, database, SCHEMAS))
    subprocess.run([tool("pg_restore"), "--dbname", database_url(admin_url, database), "--clean", "--if-exists",
                    "--single-transaction", "--exit-on-error", str(path)], check=True)
    return schemas


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="deploy/backup.py")
    p.add_argument("--admin-url", default=os.environ.get("ADMIN_DATABASE_URL", DEFAULT_ADMIN))
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backup")
    b.add_argument("--database", default=os.environ.get("DATABASE_NAME", "saas"))
    b.add_argument("--schema", choices=SCHEMAS)
    b.add_argument("--dir", type=Path, default=Path("backups"))
    r = sub.add_parser("restore")
    r.add_argument("file", type=Path)
    r.add_argument("--database", default=os.environ.get("DATABASE_NAME", "saas"))
    args = p.parse_args(argv)
    try:
        if args.cmd == "backup":
            path = backup(args.admin_url, args.database, args.schema, args.dir)
            print(path)
        else:
            schemas = restore(args.admin_url, args.file, args.database)
            print(f"restored {', '.join(schemas)} from {args.file} into {args.database}", file=sys.stderr)
    except subprocess.CalledProcessError as exc:
        print(f"{args.cmd} failed: {Path(exc.cmd[0]).name} exited with {exc.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
