"""Least privilege: each service's login role reaches only its own schema and bypasses nothing."""
import asyncpg
import pytest

from shared.testing import app_dsn


@pytest.mark.parametrize("role,other", [("auth", "ticket"), ("ticket", "tenant"), ("tenant", "auth")])
async def test_app_role_cannot_use_another_schema(role, other):
    conn = await asyncpg.connect(app_dsn(role))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(f"SELECT * FROM {other}.outbox LIMIT 1")
        # Its own schema works.
        await conn.fetch(f"SELECT id FROM {role}.outbox LIMIT 1")
        flags = await conn.fetchrow("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
                                    "WHERE rolname = current_user")
        assert not any(flags.values())
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"CREATE TABLE {role}.sneaky (id int)")
    finally:
        await conn.close()


async def test_audit_log_is_append_only_for_the_service_role():
    conn = await asyncpg.connect(app_dsn("tenant"))
    try:
        for stmt in ("UPDATE tenant.audit_event SET type = 'x'", "DELETE FROM tenant.audit_event",
                     "TRUNCATE tenant.audit_event"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(stmt)
    finally:
        await conn.close()
