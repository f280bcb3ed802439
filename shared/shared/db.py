"""One asyncpg pool per process, opened and closed in a cleanup context."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from uuid import UUID

import asyncpg
from aiohttp import web

from .config import BaseServiceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

DB_POOL = web.AppKey("db_pool", asyncpg.Pool)

# The setting every row-level-security policy reads (NULLIF(current_setting('app.tenant_id',
# true), '')::uuid in the migrations): always set transaction-local, never for the session.
TENANT_SETTING = "app.tenant_id"


async def connect_with_retry(factory: Callable[[], Awaitable[T]], *, attempts: int, what: str,
                             base_delay: float = 0.2, max_delay: float = 3.0) -> T:
    """Call ``factory()`` until it succeeds, with capped exponential backoff and jitter."""
    delay = base_delay
    for attempt in range(1, attempts + 1):
        try:
            return await factory()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if attempt == attempts:
                raise
            log.warning("%s not reachable, retrying", what,
                        extra={"attempt": attempt, "error": type(exc).__name__})
            await asyncio.sleep(delay + random.uniform(0, delay / 2))
            delay = min(delay * 2, max_delay)
    raise ValueError(f"attempts must be at least 1, not {attempts}")


async def create_pool(settings: BaseServiceSettings, *, dsn: str | None = None,
                      min_size: int | None = None, max_size: int | None = None) -> asyncpg.Pool:
    server_settings = {
        "search_path": settings.db_schema,
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "application_name": settings.service_name,
        "idle_in_transaction_session_timeout": str(max(settings.db_statement_timeout_ms * 2, 10000)),
    }
    options: dict[str, int] = {}
    if settings.db_transaction_pooling:
        # PgBouncer in transaction mode hands each transaction to any server connection: a
        # statement prepared on one is unknown on the next (no statement cache, unnamed
        # statements only), and session settings would stay on whichever server connection
        # received them. search_path and the timeouts come from the role's defaults instead
        # (shared.dbsetup); application_name is one of the few parameters PgBouncer carries.
        # Row-level security is unaffected: set_config(..., true) lives in the transaction.
        server_settings = {"application_name": settings.service_name}
        options = {"statement_cache_size": 0, "max_cached_statement_lifetime": 0}
    return await connect_with_retry(
        lambda: asyncpg.create_pool(
            dsn or settings.database_url,
            min_size=settings.db_pool_min if min_size is None else min_size,
            max_size=settings.db_pool_max if max_size is None else max_size,
            command_timeout=settings.db_command_timeout_s,
            server_settings=server_settings,
            timeout=5,
            reset=release_as_is,
            **options,
        ),
        attempts=settings.db_connect_attempts, what="postgresql",
    )


async def release_as_is(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, instead of asyncpg's default ``SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL`` (one more round trip per checkout, about a fifth of a
    primary-key read's cost on both sides). asyncpg still rolls back a transaction left open
    and drops the connection's listeners before calling this. Nothing else outlives a checkout:
    the organization scope and every other setting the services make are transaction-local
    (``set_config(..., true)``, ``SET LOCAL``), cursors close with their transaction, LISTEN is
    undone by its user (the relay and the mail sender call ``remove_listener`` before they
    release), and advisory locks and session ``SET`` are only taken on dedicated connections
    (migrations, dbsetup), never on a pooled one. Under PgBouncer's transaction mode a session
    reset would not even reach the same server connection."""


class UnsafeDatabaseRole(RuntimeError):
    """The service's database role could bypass row-level security: the process must not start."""


async def role_problems(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Why the connected role could bypass row-level security in ``schema``: superuser,
    BYPASSRLS, or owner (itself or through a role it belongs to) of the schema or of one of its
    tables, views or sequences (an owner is exempt from RLS unless FORCE is set, and can drop it)."""
    row = await conn.fetchrow(
        "SELECT r.rolname, r.rolsuper, r.rolbypassrls, "
        "  pg_has_role(current_user, n.nspowner, 'MEMBER') AS owns_schema, "
        "  (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c "
        "    WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
        "      AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owned "
        "FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = $1 "
        "WHERE r.rolname = current_user", schema)
    problems = []
    if row["rolsuper"]:
        problems.append(f"role {row['rolname']} is a superuser")
    if row["rolbypassrls"]:
        problems.append(f"role {row['rolname']} has BYPASSRLS")
    if row["owns_schema"]:
        problems.append(f"role {row['rolname']} owns schema {schema}")
    if row["owned"]:
        names = ", ".join(row["owned"][:5]) + (", ..." if len(row["owned"]) > 5 else "")
        problems.append(f"role {row['rolname']} owns tables of schema {schema} ({names})")
    return problems


async def check_least_privilege(pool: asyncpg.Pool, settings: BaseServiceSettings) -> None:
    """Refuse to run as a role that row-level security would not hold (README "Database roles")."""
    async with pool.acquire() as conn:
        problems = await role_problems(conn, settings.db_schema)
    if problems:
        message = (f"{settings.service_name}: refusing to start: the database role of "
                   f"{(settings.model_config.get('env_prefix') or '')}DATABASE_URL can bypass row-level security: "
                   + "; ".join(problems) + " (run `python -m shared.dbsetup` and connect as <schema>_app)")
        log.critical(message)
        raise UnsafeDatabaseRole(message)


def pool_ctx(settings: BaseServiceSettings, *,
             check_role: bool = True) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(settings)
        if check_role:
            try:
                await check_least_privilege(pool, settings)
            except BaseException:
                await pool.close()
                raise
        app[DB_POOL] = pool
        yield
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pool.close(), timeout=settings.shutdown_timeout_s)
    return ctx


# Transaction-local: the statements of this transaction keep one generic plan each (see
# tenant_transaction's generic_plans).
_GENERIC_PLANS = "set_config('plan_cache_mode', 'force_generic_plan', true)"


def _scoped_begin(tenant_id: object, generic_plans: bool = False) -> str | None:
    """``BEGIN`` and the organization scope as one simple-protocol message (one round trip), for
    a UUID only: its canonical text (hex digits and dashes) is the one value ever placed in SQL
    text here. Anything else goes as a parameter (``scope_transaction``)."""
    if isinstance(tenant_id, UUID):
        # UUID(int=...): the standard class's text, whatever a subclass's __str__ would say.
        generic = f", {_GENERIC_PLANS}" if generic_plans else ""
        return f"BEGIN; SELECT set_config('{TENANT_SETTING}', '{UUID(int=tenant_id.int)}', true){generic}"
    return None


async def scope_transaction(conn: asyncpg.Connection, tenant_id: object) -> None:
    """Scope the transaction ``conn`` holds to ``tenant_id`` (transaction-local: it ends with
    the transaction; a batch of several organizations re-scopes per organization)."""
    await conn.execute("SELECT set_config($1, $2, true)", TENANT_SETTING, str(tenant_id))


@contextlib.asynccontextmanager
async def tenant_transaction(pool: asyncpg.Pool, tenant_id: object, *,
                             generic_plans: bool = False) -> AsyncIterator[asyncpg.Connection]:
    """A transaction whose row-level-security scope is ``tenant_id``.

    ``set_config(..., true)`` is transaction-local, so the setting can never leak to the next
    user of the pooled connection. For a UUID the transaction opens already scoped, in one round
    trip (``_scoped_begin``); it is a plain transaction block (asyncpg sees it through the
    server's status, ``conn.is_in_transaction()``), so ``conn.transaction()`` savepoints cannot
    be nested inside it.

    ``generic_plans``: the transaction's statements keep one generic plan each (plan_cache_mode,
    transaction-local, set in the same round trip), instead of PostgreSQL's default of planning
    again on every execution whenever a custom plan looks cheaper than the generic one, as one
    with ``LIMIT $n`` always does (an unknown limit counts as a tenth of the rows). Only for
    statements whose best plan does not depend on their values.
    """
    async with pool.acquire() as conn:
        begin = _scoped_begin(tenant_id, generic_plans)
        try:
            # Opening is inside the try: cancelled (a client gone) or failed while opening, the
            # BEGIN may have reached the server, and the connection goes back only without a
            # transaction (or is dropped).
            if begin is not None:
                await conn.execute(begin)  # no arguments: the simple query protocol, both statements at once
            else:
                await conn.execute("BEGIN")
                await scope_transaction(conn, tenant_id)
                if generic_plans:
                    await conn.execute(f"SELECT {_GENERIC_PLANS}")
            yield conn
        except BaseException:
            await _rollback(conn)
            raise
        try:
            await conn.execute("COMMIT")
        except BaseException:
            await _rollback(conn)
            raise


async def _rollback(conn: asyncpg.Connection) -> None:
    if conn.is_closed() or not conn.is_in_transaction():
        return
    try:
        await conn.execute("ROLLBACK")
    except Exception:
        # The connection broke, or is still busy with the statement a cancellation interrupted:
        # drop it rather than hand back one whose transaction state is unknown. The caller
        # re-raises the error that brought it here.
        conn.terminate()
    except asyncio.CancelledError:
        conn.terminate()
        raise
