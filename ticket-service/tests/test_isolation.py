"""Proof of tenant isolation in the database itself (row-level security under a role that owns
nothing), and under load through the real app."""
import asyncio
import random
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from shared.db import create_pool, tenant_transaction
from shared.testing import owner_dsn

TABLES = ["ticket", "ticket_comment", "ticket_counter", "idempotency_key", "membership", "deleted_organization"]


async def test_no_organization_set_means_no_rows(api, org, settings):
    user = await org.user("owner")
    t = await api.create_ticket(user)
    await api.client.post(f"/v1/tickets/{t['id']}/comments", json={"body": "x"}, headers=user.auth)
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ticket"})
    try:
        assert await conn.fetchval("SELECT current_user") == "ticket_app"
        for table in TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        assert await conn.fetchval("SELECT count(*) FROM ticket WHERE id = $1", uuid.UUID(t["id"])) == 0
        # Even with the row named explicitly, an update or delete touches nothing.
        assert await conn.execute("UPDATE ticket SET title = 'pwned' WHERE id = $1", uuid.UUID(t["id"])) == "UPDATE 0"
        assert await conn.execute("DELETE FROM ticket_comment") == "DELETE 0"
        # An empty setting (what a pooled connection shows after a scoped transaction) is the same.
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', '', true)")
            assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
        # Writing without an organization, or into another one, is refused.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO ticket_counter (org_id, last_number) VALUES ($1, 1)", org.id)
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(uuid.uuid4()))
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("INSERT INTO ticket_counter (org_id, last_number) VALUES ($1, 1)", org.id)
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
            assert await conn.fetchval("SELECT count(*) FROM ticket") == 1
            # Moving a row to another organization violates the policy's WITH CHECK.
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE ticket SET org_id = $1", uuid.uuid4())
    finally:
        await conn.close()


async def test_service_role_cannot_bypass_or_disable_row_level_security(settings):
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ticket"})
    try:
        flags = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert not flags["rolsuper"] and not flags["rolbypassrls"]
        rows = await conn.fetch(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'ticket' AND c.relname = ANY($1::text[])", TABLES)
        assert {r["relname"] for r in rows} == set(TABLES)
        for r in rows:
            assert r["relrowsecurity"] and r["relforcerowsecurity"], r["relname"]
            assert r["owner"] == "ticket_owner"
        owned = await conn.fetchval("SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles "
                                    "WHERE rolname = 'ticket_app')")
        assert owned == 0
        for stmt in ("ALTER TABLE ticket DISABLE ROW LEVEL SECURITY", "ALTER TABLE ticket NO FORCE ROW LEVEL SECURITY",
                     "DROP POLICY tenant_isolation ON ticket",
                     "CREATE POLICY open_door ON ticket USING (true)"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(stmt)
        # Turning row security off does not bypass it: the query fails instead.
        await conn.execute("SET row_security = off")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM ticket")
    finally:
        await conn.close()


async def test_owner_role_is_subject_to_the_policies_too():
    conn = await asyncpg.connect(owner_dsn("ticket"), server_settings={"search_path": "ticket"})
    try:
        assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
    finally:
        await conn.close()


async def test_scope_never_leaks_to_the_next_user_of_a_pooled_connection(settings, org, api):
    user = await org.user("owner")
    await api.create_ticket(user)
    pool = await create_pool(settings, min_size=1, max_size=1)
    try:
        async with tenant_transaction(pool, org.id) as conn:
            assert await conn.fetchval("SELECT count(*) FROM ticket") == 1
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") in ("", None)
            assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
    finally:
        await pool.close()


async def test_a_thousand_interleaved_operations_of_two_organizations(api, org, other_org):
    """Two organizations hammer one app (one pool) at once with creations, reads, lists,
    searches, changes and comments; no answer ever contains the other's data."""
    users = {org.id: [await org.user(r) for r in ("owner", "agent", "member")],
             other_org.id: [await other_org.user(r) for r in ("owner", "agent", "member")]}
    owned: dict[uuid.UUID, set[str]] = {org.id: set(), other_org.id: set()}
    for org_id, (owner, _, _) in users.items():
        for _ in range(5):
            owned[org_id].add((await api.create_ticket(owner, title="shared words alpha"))["id"])
    members = {org_id: {str(u.id) for u in us} for org_id, us in users.items()}

    def only_own(items, org_id, foe):
        # A creation may commit before its response is read, so the truth for a listed ticket
        # is its requester (one of this organization's users) and never an id the other made.
        for t in items:
            assert t["requester_id"] in members[org_id] and t["id"] not in owned[foe]
        checked["items"] += len(items)

    rng = random.Random(7)
    sem = asyncio.Semaphore(16)
    checked = {"foreign_404": 0, "items": 0}

    async def op(i: int):
        org_id = org.id if i % 2 == 0 else other_org.id
        foe = other_org.id if org_id == org.id else org.id
        user = rng.choice(users[org_id][:2])
        kind = i % 6
        async with sem:
            if kind == 0:
                t = await api.create_ticket(user, title=f"shared words alpha {i}")
                owned[org_id].add(t["id"])
            elif kind == 1:
                only_own((await api.list(user, limit=50))["items"], org_id, foe)
            elif kind == 2:
                body = await api.list(user, q="alpha", sort=rng.choice(["priority", "-updated_at"]), limit=50)
                only_own(body["items"], org_id, foe)
            elif kind == 3:
                foreign = rng.choice(sorted(owned[foe]))
                resp = await api.get(user, foreign)
                assert resp.status == 404
                checked["foreign_404"] += 1
            elif kind == 4:
                mine = rng.choice(sorted(owned[org_id]))
                resp = await api.get(user, mine)
                assert resp.status == 200
                t = await resp.json()
                resp = await api.patch(user, t, {"priority": rng.choice(["low", "high"])})
                assert resp.status in (200, 412)
            else:
                foreign = rng.choice(sorted(owned[foe]))
                resp = await api.client.post(f"/v1/tickets/{foreign}/comments", json={"body": "x"}, headers=user.auth)
                assert resp.status == 404
                checked["foreign_404"] += 1

    await asyncio.gather(*(op(i) for i in range(1000)))
    assert checked["foreign_404"] > 300 and checked["items"] > 1000
    # Numbers stayed dense and separate per organization.
    for org_id, (owner, _, _) in users.items():
        seen = []
        cursor = None
        while True:
            body = await api.list(owner, limit=100, **({"cursor": cursor} if cursor else {}))
            seen += body["items"]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert {t["id"] for t in seen} == owned[org_id]
        assert sorted(t["number"] for t in seen) == list(range(1, len(seen) + 1))


async def test_indexed_search_function_never_returns_another_organizations_rows(api, org, other_org, settings,
                                                                                 admin_db):
    """ticket_search_ids runs as the no-login definer role, outside the tenant policy, so that
    the GIN index can serve a search: it must apply the organization itself."""
    mine = await api.create_ticket(await org.user("owner"), title="zebracorn migration")
    theirs = await api.create_ticket(await other_org.user("owner"), title="zebracorn outage")
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ticket"})
    try:
        assert await conn.fetchval("SELECT current_user") == "ticket_app"
        # No organization set (or an empty one): nothing.
        assert await conn.fetch("SELECT ticket_search_ids('zebracorn', 100)") == []
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', '', true)")
            assert await conn.fetch("SELECT ticket_search_ids('zebracorn', 100)") == []
        for org_id, own, foreign in ((org.id, mine, theirs), (other_org.id, theirs, mine)):
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org_id))
                ids = {str(r[0]) for r in await conn.fetch("SELECT ticket_search_ids('zebracorn', 100)")}
                assert ids == {own["id"]}
                assert foreign["id"] not in ids
        # A deleted organization's tickets are hidden from the function as from the policies.
        await admin_db.execute("INSERT INTO ticket.deleted_organization (org_id, deleted_at) VALUES ($1, now())",
                               other_org.id)
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(other_org.id))
            assert await conn.fetch("SELECT ticket_search_ids('zebracorn', 100)") == []
        # The definer role is no way around the policies for anybody else: ticket_app cannot
        # become it, and the owner (a member without its privileges) still sees nothing.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET ROLE ticket_definer")
    finally:
        await conn.close()
    owner = await asyncpg.connect(owner_dsn("ticket"), server_settings={"search_path": "ticket"})
    try:
        assert await owner.fetchval("SELECT count(*) FROM ticket") == 0
    finally:
        await owner.close()
    flags = await admin_db.fetchrow("SELECT rolcanlogin, rolbypassrls, rolsuper FROM pg_roles "
                                    "WHERE rolname = 'ticket_definer'")
    assert not flags["rolcanlogin"] and not flags["rolbypassrls"] and not flags["rolsuper"]


SEARCH_PAGE = ("SELECT ticket_search_page(q => $1, sort => $2, lim => $3, status => $4, priority => $5, "
               "assignee_id => $6, requester_id => $7, tag => $8, after_rank => $9, after_at => $10, after_id => $11, "
               "walk_rows => $12)")


async def test_search_page_function_cannot_return_another_organizations_rows(api, org, other_org, settings,
                                                                             admin_db):
    """ticket_search_page runs as the no-login definer role, outside the tenant policy, so that
    the full-text index can serve a search: it answers for the organization the transaction is
    scoped to and for nothing else, whatever its arguments (there is none naming an
    organization), however it finds the page (walk or index), with no, an empty, another or an
    unknown organization set, and a deleted organization's rows stay hidden."""
    mine_by, theirs_by = await org.user("owner"), await other_org.user("owner")
    mine = [await api.create_ticket(mine_by, title=f"okapiquest lemuralpha {i}", priority="high", tags=["vip"])
            for i in range(3)]
    theirs = [await api.create_ticket(theirs_by, title=f"okapiquest lemurbeta {i}", priority="high", tags=["vip"])
              for i in range(3)]
    mine_ids, theirs_ids = {t["id"] for t in mine}, {t["id"] for t in theirs}
    sorts = ("created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority")
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ticket"})

    async def search(q="okapiquest", sort="-created_at", lim=100, status=None, priority=None, assignee_id=None,
                     requester_id=None, tag=None, after_rank=None, after_at=None, after_id=None, walk_rows=500):
        ids = await conn.fetchval(SEARCH_PAGE, q, sort, lim, status, priority, assignee_id, requester_id, tag,
                                  after_rank, after_at, after_id, walk_rows)
        return {str(i) for i in ids}

    try:
        assert await conn.fetchval("SELECT current_user") == "ticket_app"
        # No organization set, an empty one, one that does not exist: nothing, by either path.
        for walk_rows in (0, 500):
            assert await search(walk_rows=walk_rows) == set()
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', '', true)")
                assert await search(walk_rows=walk_rows) == set()
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(uuid.uuid4()))
                assert await search(walk_rows=walk_rows) == set()
        for org_id, own, foreign, foreign_rows, foreign_user in (
                (org.id, mine_ids, theirs_ids, theirs, theirs_by), (other_org.id, theirs_ids, mine_ids, mine, mine_by)):
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org_id))
                for sort in sorts:
                    for walk_rows in (0, 1, 5, 500):
                        assert await search(sort=sort, walk_rows=walk_rows) == own
                        # Arguments taken from the other organization: its requester, a cursor on
                        # one of its rows. They filter this organization's rows, never reach others.
                        assert await search(sort=sort, walk_rows=walk_rows, requester_id=foreign_user.id) == set()
                        row = foreign_rows[1]
                        got = await search(sort=sort, walk_rows=walk_rows, priority="high", tag="vip",
                                           after_rank=3 if "priority" in sort else None,
                                           after_at=datetime.fromisoformat(row["created_at" if "updated" not in sort
                                                                               else "updated_at"]),
                                           after_id=uuid.UUID(row["id"]))
                        assert got <= own and not got & foreign
                # A bare term, a term of the other organization's titles only, any page size.
                assert await search(q="lemurbeta" if own == mine_ids else "lemuralpha") == set()
                assert await search(q="okapiquest or lemuralpha or lemurbeta", lim=1000, walk_rows=0) == own
        # A bad sort, an incomplete cursor: refused, never answered (the sort only picks one of
        # six fixed column lists; every value is a parameter).
        for bad in ({"sort": "created_at; SELECT 1"}, {"sort": "org_id"}, {"sort": "-id"}, {"sort": ""},
                    {"sort": "priority", "after_id": uuid.uuid4(), "after_at": datetime.now(UTC)}):
            with pytest.raises(asyncpg.InvalidParameterValueError):
                async with conn.transaction():
                    await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
                    await search(**bad)
        # A deleted organization's tickets are hidden from the function as from the policies.
        await admin_db.execute("INSERT INTO ticket.deleted_organization (org_id, deleted_at) VALUES ($1, now())",
                               other_org.id)
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(other_org.id))
            assert await search(walk_rows=0) == set() and await search() == set()
    finally:
        await conn.close()
    fn = await admin_db.fetchrow(
        "SELECT p.prosecdef, pg_get_userbyid(p.proowner) AS owner, p.proconfig, p.proargnames, "
        "       p.proacl::text[] AS acl "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'ticket' AND p.proname = 'ticket_search_page'")
    assert fn["prosecdef"] and fn["owner"] == "ticket_definer"
    assert "search_path=ticket, pg_temp" in fn["proconfig"]
    assert not [name for name in fn["proargnames"] if "org" in name or "tenant" in name]
    # EXECUTE for the service role only (and the owner); not PUBLIC, not the migration owner.
    assert {entry.split("=")[0] for entry in fn["acl"]} == {"ticket_app", "ticket_definer"}
    assert not await admin_db.fetchval(
        "SELECT has_function_privilege('ticket_owner', 'ticket.ticket_search_page(text, text, integer, text, text, "
        "uuid, uuid, text, smallint, timestamptz, uuid, integer)', 'EXECUTE')")
