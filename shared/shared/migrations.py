"""Raw-SQL migrations, one PostgreSQL schema per service.

A migration is one file ``<14-digit timestamp>_<name>.sql`` with a ``-- migrate:up`` and a
``-- migrate:down`` section (the dbmate format). Applied versions and the checksum of each
file are kept in ``<schema>.schema_migrations``. A PostgreSQL advisory lock makes replicas
that start together apply each migration once; a file edited after it was applied is refused.

Each section runs in one transaction, unless its marker line says ``transaction:false``
(dbmate's option: ``-- migrate:up transaction:false``). Such a section runs statement by
statement outside any transaction, which ``CREATE INDEX CONCURRENTLY`` requires (an index built
without it blocks writes to the table while it builds). A statement that fails there leaves the
ones before it applied and the version unrecorded; write such sections to be re-runnable
(``DROP INDEX CONCURRENTLY IF EXISTS ...;`` before the ``CREATE INDEX CONCURRENTLY``, which also
clears an invalid index a failed build leaves behind).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

import asyncpg

T = TypeVar("T")

SHARED_MIGRATIONS = Path(__file__).parent / "sql"
_FILE = re.compile(r"^(\d{14})_([a-z0-9_]+)\.sql$")
_UP = "-- migrate:up"
_DOWN = "-- migrate:down"
_MARKER = re.compile(r"^-- migrate:(up|down)(?P<options>[^\n]*)$", re.MULTILINE)
_OPTION = re.compile(r"^([a-z_]+):(\S+)$")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    checksum: str
    up: str
    down: str
    up_transaction: bool = True
    down_transaction: bool = True


def _section_options(path: Path, raw: str) -> bool:
    """The marker line's options; only ``transaction:true|false`` is known (as in dbmate)."""
    transaction = True
    for token in raw.split():
        m = _OPTION.match(token)
        if not m or m.group(1) != "transaction" or m.group(2) not in ("true", "false"):
            raise MigrationError(f"{path.name}: unknown migration option {token!r} (known: transaction:false)")
        transaction = m.group(2) == "true"
    return transaction


def parse_file(path: Path) -> Migration:
    m = _FILE.match(path.name)
    if not m:
        raise MigrationError(f"{path.name}: migration files are named <YYYYmmddHHMMSS>_<name>.sql")
    text = path.read_text(encoding="utf-8")
    markers = {mk.group(1): mk for mk in _MARKER.finditer(text)}
    if "up" not in markers or "down" not in markers:
        raise MigrationError(f"{path.name}: needs both '{_UP}' and '{_DOWN}' sections")
    up, down = markers["up"], markers["down"]
    if down.start() < up.start():
        raise MigrationError(f"{path.name}: '{_UP}' must come before '{_DOWN}'")
    return Migration(
        version=m.group(1), name=m.group(2), path=path,
        checksum=hashlib.sha256(text.encode()).hexdigest(),
        up=text[up.end():down.start()].strip(), down=text[down.end():].strip(),
        up_transaction=_section_options(path, up.group("options")),
        down_transaction=_section_options(path, down.group("options")),
    )


def split_statements(sql: str) -> list[str]:
    """One SQL text into its statements, for sections run outside a transaction (several
    statements in one simple query would run in an implicit transaction). Semicolons inside
    quotes, quoted identifiers, dollar-quoted bodies and comments do not split."""
    out, start, i, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:   # doubled quote inside the literal
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "$":
            tag = re.match(r"\$[A-Za-z_][A-Za-z0-9_]*\$|\$\$", sql[i:])
            if tag:
                j = sql.find(tag.group(0), i + len(tag.group(0)))
                i = n if j < 0 else j + len(tag.group(0))
            else:
                i += 1
        elif c == ";":
            out.append(sql[start:i].strip())
            start = i = i + 1
        else:
            i += 1
    out.append(sql[start:].strip())
    return [s for s in out if s and not _only_comments(s)]


def _only_comments(statement: str) -> bool:
    stripped = re.sub(r"--[^\n]*", "", re.sub(r"/\*.*?\*/", "", statement, flags=re.DOTALL))
    return not stripped.strip()


def discover(dirs: list[Path]) -> list[Migration]:
    found: dict[str, Migration] = {}
    for d in dirs:
        for path in sorted(Path(d).glob("*.sql")):
            mig = parse_file(path)
            if mig.version in found:
                raise MigrationError(f"duplicate version {mig.version}: {found[mig.version].path} and {path}")
            found[mig.version] = mig
    return [found[v] for v in sorted(found)]


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise MigrationError(f"bad identifier {name!r}")
    return f'"{name}"'


class Runner:
    def __init__(self, dsn: str, schema: str, dirs: list[Path], *, out: TextIO | None = None) -> None:
        self.dsn, self.schema, self.dirs = dsn, schema, [Path(d) for d in dirs]
        self.out = out or sys.stdout
        self.table = f"{_ident(schema)}.schema_migrations"

    def _say(self, msg: str) -> None:
        print(msg, file=self.out, flush=True)

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        await conn.execute(f"SET search_path TO {_ident(self.schema)}")
        return conn

    async def _ensure_table(self, conn: asyncpg.Connection) -> None:
        # Only ever called under the advisory lock: CREATE TABLE IF NOT EXISTS is not safe
        # against a concurrent creator.
        await conn.execute(f"""
            CREATE TABLE IF NOT EXISTS {self.table} (
                version    text PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )""")

    async def _locked(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        conn = await self._connect()
        try:
            # Replicas starting together queue here; each one then sees what the first applied.
            await conn.execute("SELECT pg_advisory_lock(hashtext('schema_migrations:' || $1))", self.schema)
            try:
                await self._ensure_table(conn)
                return await fn(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext('schema_migrations:' || $1))", self.schema)
        finally:
            await conn.close()

    async def _applied(self, conn: asyncpg.Connection) -> dict[str, asyncpg.Record]:
        if await conn.fetchval("SELECT to_regclass($1)", f"{self.schema}.schema_migrations") is None:
            return {}
        rows = await conn.fetch(f"SELECT version, name, checksum, applied_at FROM {self.table} ORDER BY version")
        return {r["version"]: r for r in rows}

    def _verify(self, migrations: list[Migration], applied: dict[str, asyncpg.Record]) -> None:
        by_version = {m.version: m for m in migrations}
        for version, row in applied.items():
            mig = by_version.get(version)
            if mig is not None and mig.checksum != row["checksum"]:
                raise MigrationError(
                    f"migration {mig.path.name} was edited after it was applied "
                    f"(checksum {row['checksum'][:12]} recorded, {mig.checksum[:12]} on disk); "
                    "restore the file and add a new migration for the change")

    async def up(self) -> list[str]:
        migrations = discover(self.dirs)

        async def run(conn: asyncpg.Connection) -> list[str]:
            applied = await self._applied(conn)
            self._verify(migrations, applied)
            done = []
            for mig in migrations:
                if mig.version in applied:
                    continue
                started = time.monotonic()
                record = (f"INSERT INTO {self.table} (version, name, checksum) VALUES ($1, $2, $3)",
                          mig.version, mig.name, mig.checksum)
                if mig.up_transaction:
                    async with conn.transaction():
                        await conn.execute(mig.up)
                        await conn.execute(*record)
                else:
                    for statement in split_statements(mig.up):
                        await conn.execute(statement)
                    await conn.execute(*record)
                self._say(f"[{self.schema}] applied {mig.version}_{mig.name} in {time.monotonic() - started:.3f}s")
                done.append(mig.version)
            if not done:
                self._say(f"[{self.schema}] up to date")
            return done
        return await self._locked(run)

    async def down(self, steps: int = 1) -> list[str]:
        migrations = {m.version: m for m in discover(self.dirs)}

        async def run(conn: asyncpg.Connection) -> list[str]:
            applied = await self._applied(conn)
            self._verify(list(migrations.values()), applied)
            done = []
            for version in sorted(applied, reverse=True)[:steps]:
                mig = migrations.get(version)
                if mig is None:
                    raise MigrationError(f"[{self.schema}] applied version {version} has no file to roll back with")
                if mig.down_transaction:
                    async with conn.transaction():
                        if mig.down:
                            await conn.execute(mig.down)
                        await conn.execute(f"DELETE FROM {self.table} WHERE version = $1", version)
                else:
                    for statement in split_statements(mig.down):
                        await conn.execute(statement)
                    await conn.execute(f"DELETE FROM {self.table} WHERE version = $1", version)
                self._say(f"[{self.schema}] rolled back {mig.version}_{mig.name}")
                done.append(version)
            return done
        return await self._locked(run)

    async def status(self) -> list[tuple[str, str, str]]:
        migrations = discover(self.dirs)
        conn = await self._connect()
        try:
            applied = await self._applied(conn)
        finally:
            await conn.close()
        rows = []
        for mig in migrations:
            row = applied.get(mig.version)
            if row is None:
                state = "pending"
            elif row["checksum"] != mig.checksum:
                state = "EDITED"
            else:
                state = "applied " + row["applied_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
            rows.append((mig.version, mig.name, state))
        for version, row in applied.items():
            if version not in {m.version for m in migrations}:
                rows.append((version, row["name"], "applied, file missing"))
        for version, name, state in rows:
            self._say(f"[{self.schema}] {version}_{name}: {state}")
        return rows


def new_migration(directory: Path, name: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise MigrationError("give the migration a name, e.g. add_ticket_index")
    path = Path(directory) / f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}_{slug}.sql"
    path.write_text("-- migrate:up\n\n\n-- migrate:down\n\n", encoding="utf-8")
    return path


def cli(argv: list[str], *, dsn: str, schema: str, own_dir: Path, shared: bool = True) -> int:
    """``migrate up | down [N] | status | new NAME`` for one service."""
    parser = argparse.ArgumentParser(prog="migrate")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up")
    d = sub.add_parser("down")
    d.add_argument("n", nargs="?", type=int, default=1)
    sub.add_parser("status")
    n = sub.add_parser("new")
    n.add_argument("name")
    args = parser.parse_args(argv)
    dirs = ([SHARED_MIGRATIONS] if shared else []) + [own_dir]
    try:
        if args.cmd == "new":
            print(new_migration(own_dir, args.name))
            return 0
        runner = Runner(dsn, schema, dirs)
        coro = {"up": runner.up, "status": runner.status}.get(args.cmd)
        asyncio.run(coro() if coro else runner.down(args.n))
        return 0
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"migrate: database error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
