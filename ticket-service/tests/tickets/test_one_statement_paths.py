"""The short paths (issue 16): a GET and a creation are one statement each that scopes itself
(ticket_read, ticket_create_many), transactions open already scoped, a ticket is serialized from its
trusted row without a model, and verified tokens are cached. Each keeps what it replaced: the
same isolation, the same JSON, the same events."""
import json
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from shared.auth import TOKEN_CACHE
from shared.db import TENANT_SETTING, _scoped_begin, create_pool, tenant_transaction
from shared.web import dumps_json
from ticket_service.tickets.repository import (
    SORTS,
    TicketFilter,
    TicketRow,
    list_page,
    list_tickets,
    listed_key,
    read_ticket,
)
from ticket_service.tickets.schemas import TicketOut
from ticket_service.tickets.service import event_data

# ------------------------------------------------------------------ the representation

moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31),
                       timezones=st.just(UTC))
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@st.composite
def rows(draw):
    return TicketRow(
        id=draw(st.uuids()), org_id=draw(st.uuids()), number=draw(st.integers(1, 2 ** 62)), title=draw(texts),
        description=draw(texts), status=draw(st.sampled_from(["open", "in_progress", "pending", "resolved", "closed"])),
        priority=draw(st.sampled_from(["low", "normal", "high", "urgent"])), priority_rank=2,
        tags=draw(st.lists(texts, max_size=4)), requester_id=draw(st.uuids()),
        assignee_id=draw(st.none() | st.uuids()), created_at=draw(moments), updated_at=draw(moments),
        version=draw(st.integers(1, 2 ** 31 - 1)), deleted_at=None)


@hyp_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_representation_is_the_documented_ticket_byte_for_byte(row):
    model = TicketOut(**row.representation())
    assert dumps_json(row.representation()) == model.model_dump_json().encode()
    assert event_data(row.representation()) == model.model_dump(mode="json")


async def test_a_read_row_serializes_like_the_model(api, org, pool):
    """asyncpg's own UUID and datetime values, straight from ticket_read."""
    user = await org.user("owner")
    created = await api.create_ticket(user, title="Zoë's \u2028 printer", tags=["ü", "x"])
    ticket = await read_ticket(pool, org_id=org.id, ticket_id=uuid.UUID(created["id"]))
    assert list(ticket) == list(TicketOut.model_fields)
    assert dumps_json(ticket) == TicketOut(**ticket).model_dump_json().encode()
    resp = await api.get(user, created["id"])
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await resp.read() == dumps_json(ticket)
    assert json.loads(await resp.read()) == created


async def test_every_list_path_writes_the_tickets_the_get_writes(api, org):
    """A list page's items (repository.listed: ids as text from PostgreSQL, no TicketRow) are the
    GET's tickets, key for key and byte for byte, on each list path: the unfiltered page
    (ticket_page), a search (ticket_search) and a filtered page (the transaction path)."""
    owner, agent = await org.user("owner"), await org.user("agent")
    made = [await api.create_ticket(owner, title="Zoë's \u2028 printer quokka", tags=["ü", "x"]),
            await api.create_ticket(owner, title="plain quokka", description="ok", priority="urgent")]
    resp = await api.patch(owner, made[1], {"assignee_id": str(agent.id)})
    assert resp.status == 200, await resp.text()
    gets = {t["id"]: await (await api.get(owner, t["id"])).read() for t in made}
    for query in ({}, {"q": "quokka"}, {"status": "open"}, {"sort": "-priority", "limit": "1"}):
        resp = await api.client.get("/v1/tickets", params=query, headers=owner.auth)
        assert resp.status == 200
        body = await resp.read()
        assert body == dumps_json(json.loads(body))
        items = json.loads(body)["items"]
        assert items and {i["id"] for i in items} <= set(gets), query
        for item in items:
            assert dumps_json(item) == gets[item["id"]], (query, item)
    # The last query's cursor (its key written from the text id) reads the next page.
    cursor = json.loads(body)["next_cursor"]
    after = await api.list(owner, sort="-priority", limit=1, cursor=cursor)
    assert [i["id"] for i in after["items"]] == [made[0]["id"]]


# ------------------------------------------------------------------ one statement, same policy

async def test_ticket_read_applies_the_policy_and_leaves_no_scope_behind(api, org, other_org, settings, admin_db):
    mine = await api.create_ticket(await org.user("owner"))
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ticket"})
    try:
        assert await conn.fetchval("SELECT current_user") == "ticket_app"
        tid = uuid.UUID(mine["id"])
        assert (await conn.fetchrow("SELECT * FROM ticket_read($1, $2)", org.id, tid))["id"] == tid
        # Another organization's scope does not see it, whatever id is named.
        assert await conn.fetch("SELECT * FROM ticket_read($1, $2)", other_org.id, tid) == []
        # The scope lived for that statement only: the connection is back to no organization.
        assert await conn.fetchval("SELECT current_setting($1, true)", TENANT_SETTING) in ("", None)
        assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
        # An invoker's function: the caller's role, under the policy (a deleted organization's
        # tickets are hidden by the policy, not by the function).
        assert await conn.fetchval("SELECT prosecdef FROM pg_proc WHERE proname = 'ticket_read'") is False
        await admin_db.execute("INSERT INTO ticket.deleted_organization (org_id, deleted_at) VALUES ($1, now())",
                               org.id)
        assert await conn.fetch("SELECT * FROM ticket_read($1, $2)", org.id, tid) == []
    finally:
        await conn.close()


async def test_a_member_reads_only_own_tickets_through_the_short_path(api, org):
    owner, member = await org.user("owner"), await org.user("member")
    theirs = await api.create_ticket(owner)
    own = await api.create_ticket(member)
    assert (await api.get(member, own["id"])).status == 200
    await api.problem(await api.get(member, theirs["id"]), 404)


# ------------------------------------------------------------------ creation in one statement

@pytest.mark.parametrize("moment", [
    datetime(2026, 11, 30, 9, 0, 0, 0, tzinfo=UTC), datetime(2026, 11, 30, 9, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 30, 9, 0, 0, 100000, tzinfo=UTC), datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 500, tzinfo=UTC), datetime(2000, 2, 29, 0, 0, 0, 10, tzinfo=UTC)])
async def test_the_database_writes_times_as_the_service_does(pool, moment):
    """ticket_create_many writes the row's times into the event: the same text the API shows."""
    async with pool.acquire() as conn:
        for zone in ("UTC", "Europe/Berlin", "America/St_Johns"):  # whatever the session's zone
            async with conn.transaction():
                await conn.execute(f"SET LOCAL TIME ZONE '{zone}'")
                assert await conn.fetchval("SELECT ticket_json_time($1)", moment) == event_data({"t": moment})["t"]
    assert event_data({"t": moment})["t"] == json.loads(dumps_json({"t": moment}))["t"]


async def test_every_way_of_creating_writes_the_event_of_the_row(api, org):
    owner, agent = await org.user("owner"), await org.user("agent")
    plain = await api.create_ticket(owner, title="plain", tags=["a", "b"])
    assigned = await api.create_ticket(owner, title="assigned", assignee_id=str(agent.id), priority="high")
    resp = await api.client.post("/v1/tickets", json={"title": "keyed", "description": "d"},
                                 headers={**owner.auth, "Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    assert resp.status == 201
    keyed = await resp.json()
    assert [t["number"] for t in (plain, assigned, keyed)] == [1, 2, 3]
    for ticket in (plain, assigned, keyed):
        [event] = await api.events_of(ticket["id"], "ticket.created")
        assert event["data"] == ticket
        assert event["data"]["created_at"].endswith("Z") and event["tenant_id"] == str(org.id)
        assert event["occurred_at"] == ticket["created_at"]
        assert ticket == await (await api.get(owner, ticket["id"])).json()


async def test_creating_in_a_deleted_organization_leaves_nothing(api, org, admin_db):
    owner = await org.user("owner")
    first = await api.create_ticket(owner)
    await admin_db.execute("INSERT INTO ticket.deleted_organization (org_id, deleted_at) VALUES ($1, now())",
                           org.id)
    for headers in ({}, {"Idempotency-Key": "k-after-delete"}):
        resp = await api.client.post("/v1/tickets", json={"title": "too late"}, headers={**owner.auth, **headers})
        await api.problem(resp, 404)
    assert await admin_db.fetchval("SELECT count(*) FROM ticket.ticket WHERE org_id = $1", org.id) == 1
    assert await admin_db.fetchval("SELECT last_number FROM ticket.ticket_counter WHERE org_id = $1", org.id) == 1
    assert await admin_db.fetchval("SELECT count(*) FROM ticket.outbox WHERE payload->>'tenant_id' = $1 "
                                   "AND routing_key = 'ticket.created'", str(org.id)) == 1
    assert first["number"] == 1


# ------------------------------------------------------------------ transactions open scoped

def test_only_a_uuid_is_written_into_the_scoped_begin():
    org = uuid.uuid4()
    assert _scoped_begin(org) == f"BEGIN; SELECT set_config('{TENANT_SETTING}', '{org}', true)"
    assert _scoped_begin(asyncpg.pgproto.pgproto.UUID(str(org))) == _scoped_begin(org)
    for other in (str(org), f"{org}'; DROP TABLE ticket; --", None, 42):
        assert _scoped_begin(other) is None


@pytest.mark.parametrize("as_text", [False, True])
async def test_tenant_transaction_scopes_commits_and_rolls_back(api, org, settings, as_text):
    ticket = await api.create_ticket(await org.user("owner"), title="before")
    tid = uuid.UUID(ticket["id"])
    scope = str(org.id) if as_text else org.id  # a UUID opens scoped in one message, text as a parameter
    pool = await create_pool(settings, min_size=1, max_size=1)
    try:
        with pytest.raises(LookupError):
            async with tenant_transaction(pool, scope) as conn:
                assert conn.is_in_transaction()
                assert await conn.execute("UPDATE ticket SET title = 'during' WHERE id = $1", tid) == "UPDATE 1"
                raise LookupError("the handler failed")
        async with pool.acquire() as conn:  # the one connection: rolled back, no scope, no transaction
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT current_setting($1, true)", TENANT_SETTING) in ("", None)
            assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
        async with tenant_transaction(pool, scope) as conn:
            assert await conn.fetchval("SELECT title FROM ticket WHERE id = $1", tid) == "before"
            await conn.execute("UPDATE ticket SET title = 'after' WHERE id = $1", tid)
        async with tenant_transaction(pool, scope) as conn:
            assert await conn.fetchval("SELECT title FROM ticket WHERE id = $1", tid) == "after"
        # A failed statement inside: the error reaches the caller and the connection is clean.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(pool, scope) as conn:
                await conn.execute("UPDATE ticket SET org_id = $1 WHERE id = $2", uuid.uuid4(), tid)
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
    finally:
        await pool.close()


@pytest.mark.parametrize("as_text", [False, True])
async def test_generic_plans_last_for_the_transaction_only(org, settings, as_text):
    """tenant_transaction(generic_plans=True) keeps one plan per statement for that transaction
    (plan_cache_mode, transaction-local), scoped as ever; the pooled connection's next user gets
    PostgreSQL's default again."""
    assert _scoped_begin(org.id, True) == (f"BEGIN; SELECT set_config('{TENANT_SETTING}', '{org.id}', true), "
                                           "set_config('plan_cache_mode', 'force_generic_plan', true)")
    scope = str(org.id) if as_text else org.id
    pool = await create_pool(settings, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            default = await conn.fetchval("SHOW plan_cache_mode")
        async with tenant_transaction(pool, scope, generic_plans=True) as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
            assert await conn.fetchval("SELECT current_setting($1)", TENANT_SETTING) == str(org.id)
        async with tenant_transaction(pool, scope) as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == default != "force_generic_plan"
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == default
    finally:
        await pool.close()


@pytest.mark.parametrize("query, generic", [
    ({"status": "open"}, True), ({"priority": "high", "tag": "vip"}, True),
    ({"status": "open", "sort": "priority"}, True),
    ({"assignee_id": "self"}, False), ({"requester_id": "self"}, False)])
async def test_a_filtered_page_keeps_one_plan_unless_a_person_is_filtered(client, api, org, monkeypatch, query,
                                                                           generic):
    """The filtered list's statement keeps one generic plan when its filters have no index of
    their own (status, priority, tag: the sort's index is walked whatever their values); a
    requester or an assignee is planned for its value. Observed in the list's own transaction."""
    from ticket_service.tickets import repository
    owner = await org.user("owner")
    await api.create_ticket(owner, priority="high", tags=["vip"])
    seen = []
    real = repository.list_tickets

    async def observed(conn, **kw):
        seen.append(await conn.fetchval("SHOW plan_cache_mode"))
        return await real(conn, **kw)
    monkeypatch.setattr(repository, "list_tickets", observed)
    params = {k: (str(owner.id) if v == "self" else v) for k, v in query.items()}
    resp = await client.get("/v1/tickets", params=params, headers=owner.auth)
    assert resp.status == 200
    assert len(seen) == 1 and (seen[0] == "force_generic_plan") is generic


@pytest.mark.parametrize("sort", list(SORTS))
async def test_a_filtered_page_walks_its_sorts_index_without_a_sort(api, org, pool, sort):
    """The filtered list selects the Ticket's columns with the id as text (repository.listed): its
    ORDER BY must still name the table's columns, which the sort's index holds in order; the
    output's text id would make PostgreSQL sort what it read. The plan of the statement the list
    runs (a page after a cursor, status filtered) has no sort in it."""
    owner = await org.user("owner")
    for i in range(5):
        await api.create_ticket(owner, priority=["low", "high"][i % 2])
    statements = []

    class Recording:
        def __init__(self, conn):
            self.conn = conn

        async def fetch(self, sql, *args):
            statements.append((sql, args))
            return await self.conn.fetch(sql, *args)
    async with tenant_transaction(pool, org.id) as conn:
        first = await list_tickets(Recording(conn), filters=TicketFilter(status="open"), sort=sort, after=None,
                                   limit=2)
        await list_tickets(Recording(conn), filters=TicketFilter(status="open"), sort=sort,
                           after=listed_key(first[-1], sort), limit=2)
        for sql, args in statements:
            plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
            assert '"Sort"' not in plan and "Incremental Sort" not in plan, (sort, plan)


async def test_a_transaction_left_open_is_rolled_back_on_release(settings, org, api):
    ticket = await api.create_ticket(await org.user("owner"), title="kept")
    pool = await create_pool(settings, min_size=1, max_size=1)
    try:
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("SELECT set_config($1, $2, true)", TENANT_SETTING, str(org.id))
        await conn.execute("UPDATE ticket SET title = 'lost' WHERE id = $1", uuid.UUID(ticket["id"]))
        await pool.release(conn)
        async with tenant_transaction(pool, org.id) as conn:
            assert await conn.fetchval("SELECT title FROM ticket WHERE id = $1", uuid.UUID(ticket["id"])) == "kept"
    finally:
        await pool.close()


# ------------------------------------------------------------------ verified tokens, cached

async def test_a_verified_token_is_cached_until_it_expires(client, org):
    user = await org.user("owner")
    cache = client.app[TOKEN_CACHE]
    before = len(cache)
    for _ in range(3):
        assert (await client.get("/v1/tickets", headers=user.auth)).status == 200
    assert len(cache) == before + 1
    # Expired, but within the leeway: accepted, never kept past its exp.
    late = org.tokens.mint(user_id=user.id, tenant_id=org.id, role="owner", iat=int(time.time()) - 905, ttl_s=900)
    assert (await client.get("/v1/tickets", headers={"Authorization": f"Bearer {late}"})).status == 200
    assert len(cache) == before + 1
    # A forged token is refused every time, and never cached.
    forged = user.token[:-4] + ("AAAA" if not user.token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        assert (await client.get("/v1/tickets", headers={"Authorization": f"Bearer {forged}"})).status == 401
    assert len(cache) == before + 1


# ------------------------------------------------------------------ an unfiltered page in one statement

async def test_ticket_page_applies_the_policy_and_leaves_no_scope_behind(api, org, other_org, settings, admin_db):
    owner = await org.user("owner")
    mine = {(await api.create_ticket(owner))["id"] for _ in range(3)}
    theirs = await api.create_ticket(await other_org.user("owner"))
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ticket"})
    try:
        assert await conn.fetchval("SELECT current_user") == "ticket_app"
        for sort in SORTS:
            page = await conn.fetch("SELECT * FROM ticket_page($1, $2, 100, NULL, NULL, NULL)", org.id, sort)
            assert {str(r["id"]) for r in page} == mine
            # Another organization's page holds only its own ticket, whatever the cursor.
            other = await conn.fetch("SELECT * FROM ticket_page($1, $2, 100, NULL, NULL, NULL)", other_org.id, sort)
            assert [str(r["id"]) for r in other] == [theirs["id"]]
        assert await conn.fetch("SELECT * FROM ticket_page($1, 'no such sort', 100, NULL, NULL, NULL)", org.id) == []
        # The scope lived for the statement only.
        assert await conn.fetchval("SELECT current_setting($1, true)", TENANT_SETTING) in ("", None)
        assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
        assert await conn.fetchval("SELECT prosecdef FROM pg_proc WHERE proname = 'ticket_page'") is False
        # One plan per session: a re-planned page statement cost 60 us a call once the table had
        # statistics (migration ticket_page_generic_plan).
        assert {"plan_cache_mode=force_generic_plan", "jit=off"} <= set(
            await conn.fetchval("SELECT proconfig FROM pg_proc WHERE proname = 'ticket_page'"))
        await admin_db.execute("INSERT INTO ticket.deleted_organization (org_id, deleted_at) VALUES ($1, now())",
                               org.id)
        assert await conn.fetch("SELECT * FROM ticket_page($1, '-created_at', 100, NULL, NULL, NULL)", org.id) == []
    finally:
        await conn.close()


@pytest.mark.parametrize("sort", list(SORTS))
async def test_unfiltered_pages_equal_the_transaction_path_page_by_page(api, org, pool, sort):
    """ticket_page and list_tickets (the path filtered lists keep) give the same pages, cursor by
    cursor, in every sort, ties on the sort key included."""
    owner = await org.user("owner")
    for i in range(7):
        await api.create_ticket(owner, priority=["low", "high", "normal"][i % 3])
    await api.create_ticket(owner)
    after, short, long_ = None, [], []
    while True:
        page = await list_page(pool, org_id=org.id, sort=sort, after=after, limit=3)
        async with tenant_transaction(pool, org.id) as conn:
            same = await list_tickets(conn, filters=TicketFilter(), sort=sort, after=after, limit=3)
        assert page == same
        short += page
        long_ += same
        if len(page) < 3:
            break
        after = listed_key(page[-1], sort)
    assert len(short) == 8 and len({r["id"] for r in short}) == 8


# ------------------------------------------------------------------ a search page in one statement

SEARCH = "SELECT * FROM ticket_search($1, $2, $3, 100, $4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, $5)"


async def test_ticket_search_applies_the_policy_and_leaves_no_scope_behind(api, org, other_org, settings, admin_db):
    """ticket_search scopes itself to the organization it is given, takes the page's ids from
    ticket_search_page (which reads that scope, never an argument) and reads the rows under the
    tenant policy: another organization's matches never appear, whichever way the ids were found
    (walk or index), and nothing of the scope outlives the statement."""
    owner, theirs_by = await org.user("owner"), await other_org.user("owner")
    mine = {(await api.create_ticket(owner, title=f"numbat search {i}"))["id"] for i in range(3)}
    pending = await api.create_ticket(owner, title="numbat pending")
    assert (await api.patch(owner, pending, {"status": "pending"})).status == 200
    theirs = {(await api.create_ticket(theirs_by, title=f"numbat theirs {i}"))["id"] for i in range(2)}
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": "ticket"})
    try:
        assert await conn.fetchval("SELECT current_user") == "ticket_app"
        for walk_rows in (0, 3, 10_000):
            for sort in SORTS:
                page = await conn.fetch(SEARCH, org.id, "numbat", sort, None, walk_rows)
                assert {str(r["id"]) for r in page} == mine | {pending["id"]}
                # The status filter holds, in the ids and in the rows read.
                page = await conn.fetch(SEARCH, org.id, "numbat", sort, "open", walk_rows)
                assert {str(r["id"]) for r in page} == mine
                other = await conn.fetch(SEARCH, other_org.id, "numbat", sort, None, walk_rows)
                assert {str(r["id"]) for r in other} == theirs
            assert await conn.fetch(SEARCH, org.id, "theirs", "-created_at", None, walk_rows) == []
        # An unknown sort is refused by ticket_search_page, as before.
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await conn.fetch(SEARCH, org.id, "numbat", "no such sort", None, 10)
        # The scope lived for the statement only.
        assert await conn.fetchval("SELECT current_setting($1, true)", TENANT_SETTING) in ("", None)
        assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
        assert await conn.fetchval("SELECT prosecdef FROM pg_proc WHERE proname = 'ticket_search'") is False
        await admin_db.execute("INSERT INTO ticket.deleted_organization (org_id, deleted_at) VALUES ($1, now())",
                               org.id)
        for walk_rows in (0, 10_000):
            assert await conn.fetch(SEARCH, org.id, "numbat", "-created_at", None, walk_rows) == []
    finally:
        await conn.close()


async def test_a_search_is_not_taken_by_the_transaction_path(pool, org):
    """list_tickets refuses q: a search has one path (search_page), so it cannot answer two ways."""
    async with tenant_transaction(pool, org.id) as conn:
        with pytest.raises(ValueError):
            await list_tickets(conn, filters=TicketFilter(q="anything"), sort="-created_at", after=None, limit=3)


# ------------------------------------------------------------------ deep pages walk from the cursor

INDEX_ENTRIES = "SELECT pg_stat_get_xact_tuples_returned('ticket.ticket_created_idx'::regclass)"


async def test_a_page_deep_in_the_order_reads_the_index_from_its_cursor(api, org, pool):
    """ticket_page and ticket_search_page keep one generic plan: their cursor bounds must be
    index conditions of it, so a page after a cursor deep in the order reads about a page of
    index entries, not every entry before the cursor (PostgreSQL's counts for this transaction)."""
    owner = await org.user("owner")
    for i in range(60):
        await api.create_ticket(owner, title=f"pangolin deep page {i}")
    async with tenant_transaction(pool, org.id) as conn:
        rows = await conn.fetch("SELECT created_at, id FROM ticket ORDER BY created_at DESC, id DESC")
    cursor = rows[49]
    for call, args in (
            ("SELECT count(*) FROM ticket_page($1, '-created_at', 3, NULL, $2, $3)", (org.id,)),
            ("SELECT cardinality(ticket_search_page(q => 'pangolin', sort => '-created_at', lim => 3, "
             "after_at => $2, after_id => $3, walk_rows => 1000)) FROM set_config('app.tenant_id', $1::text, true)",
             (str(org.id),))):
        async with pool.acquire() as conn, conn.transaction():
            for _ in range(3):  # the generic plan, whatever the call
                before = await conn.fetchval(INDEX_ENTRIES)
                assert await conn.fetchval(call, *args, cursor["created_at"], cursor["id"]) == 3
                read = await conn.fetchval(INDEX_ENTRIES) - before
                assert read <= 16, (call, read)  # a walk of 5 rows a result at most; 53 from the top
