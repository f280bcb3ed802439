"""GET /v1/tickets?q=...: pages found by ticket_search_page (migration search_page), which walks the
sort order for a common term and reads the full-text index for a rare one, are the pages the plain
filter under the tenant policy gives (the non-indexed path), whichever way it took."""
import uuid

import pytest

from shared.db import tenant_transaction

SORTS = ("created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority")
KEYS = {"created_at": ("created_at", "id"), "updated_at": ("updated_at", "id"),
        "priority": ("priority_rank", "created_at", "id")}
# SEARCH_WALK_ROWS: the index only; walks of 3 or 10 rows, then the index when they come up
# short; a walk that reads a small organization to its end.
WALKS = (0, 3, 10, 10_000)


async def reference(pool, org_id, q: str, sort: str, **filters) -> list[str]:
    """The non-indexed path: the term as a filter under the tenant policy, in sort order."""
    direction = "DESC" if sort.startswith("-") else "ASC"
    order = ", ".join(f"{k} {direction}" for k in KEYS[sort.lstrip("-")])
    where, args = ["deleted_at IS NULL", "search @@ websearch_to_tsquery('english', $1)"], [q]
    for column, value in filters.items():
        args.append(value)
        where.append(f"${len(args)} = ANY(tags)" if column == "tag" else f"{column} = ${len(args)}")
    async with tenant_transaction(pool, org_id) as conn:
        rows = await conn.fetch(f"SELECT id FROM ticket WHERE {' AND '.join(where)} ORDER BY {order}", *args)
    return [str(r[0]) for r in rows]


async def walk(api, user, limit: int, **query) -> list[str]:
    seen, cursor, pages = [], None, 0
    while True:
        body = await api.list(user, limit=limit, **query, **({"cursor": cursor} if cursor else {}))
        assert len(body["items"]) <= limit
        seen += [t["id"] for t in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            assert pages == max(1, -(-len(seen) // limit)), "a page came short before the end"
            return seen


@pytest.fixture
async def searchable(api, org):
    """30 tickets of two requesters: most say "quokka" in the title, some "marsupial" in the
    description; priorities, tags and statuses vary, some were edited (updated_at order differs
    from created_at order) and two deleted."""
    agent, member, admin = await org.user("agent"), await org.user("member"), await org.user("admin")
    prios = ["low", "normal", "high", "urgent"]
    made = []
    for i in range(30):
        made.append(await api.create_ticket(
            member if i % 4 == 0 else agent,
            title=f"quokka report {i}" if i % 3 else f"wombat note {i}",
            description="a marsupial question" if i % 5 == 0 else "nothing special",
            priority=prios[i % 4], tags=[["billing"], [], ["vip"]][i % 3]))
    for t in made[1::4]:
        assert (await api.patch(agent, t, {"status": "pending"})).status == 200
    for t in made[::7]:
        fresh = await (await api.get(agent, t["id"])).json()
        assert (await api.patch(agent, fresh, {"title": fresh["title"] + " again"})).status == 200
    for t in made[2:4]:
        resp = await api.client.delete(f"/v1/tickets/{t['id']}", headers=admin.auth)
        assert resp.status == 204
    return agent, member


async def test_every_way_of_finding_a_page_gives_the_pages_of_the_plain_filter(api, org, pool, searchable,
                                                                                 monkeypatch):
    from ticket_service.tickets import repository
    agent, member = searchable
    cases = [("quokka", sort, {}) for sort in SORTS]
    for sort in ("-created_at", "priority"):
        cases += [(q, sort, {}) for q in ("marsupial", "quokka -marsupial", '"quokka report"', "nothing-like-this")]
        cases += [("quokka", sort, f) for f in ({"status": "pending"}, {"priority": "high"}, {"tag": "vip"},
                                                  {"status": "open", "tag": "billing"})]
    checked = 0
    for walk_rows in WALKS:
        monkeypatch.setattr(repository, "SEARCH_WALK_ROWS", walk_rows)
        for q, sort, filters in cases:
            want = await reference(pool, org.id, q, sort, **filters)
            got = await walk(api, agent, 4, q=q, sort=sort, **filters)
            assert got == want, (walk_rows, q, sort, filters)
            checked += len(got)
        # A member's search is restricted to the tickets they requested.
        got = await walk(api, member, 2, q="quokka", sort="-updated_at")
        assert got == await reference(pool, org.id, "quokka", "-updated_at", requester_id=member.id)
        assert got
    assert checked > 400


# Scans of the ticket table in this transaction (sequential plus those of each of its indexes),
# as PostgreSQL counts them: one per walk, one (or more: a BitmapAnd) for the read of every match.
SCANS = ("SELECT pg_stat_get_xact_numscans('ticket'::regclass) + (SELECT sum(pg_stat_get_xact_numscans(indexrelid)) "
         "FROM pg_index WHERE indrelid = 'ticket'::regclass)")


async def search_page(conn, q: str, *, lim: int, walk_rows: int) -> tuple[list[str], int]:
    """The function's first page by -created_at, and how many scans of the table it took."""
    before = await conn.fetchval(SCANS)
    ids = await conn.fetchval("SELECT ticket_search_page(q => $1, sort => '-created_at', lim => $2, walk_rows => $3)",
                              q, lim, walk_rows)
    return [str(i) for i in ids], await conn.fetchval(SCANS) - before


async def test_the_walks_hand_over_to_the_index_read_exactly_when_they_come_up_short(api, org, pool):
    """Seventy tickets. A page the first walk fills, or a walk that reaches the last row, is
    answered by the walk alone; a walk that finds some matches but not a page walks again,
    deeper, while that fits in walk_rows, then hands over to the read of every match (through
    the index on a large organization); so does a first walk without a match. Every answer is
    the plain filter's first page."""
    agent = await org.user("agent")
    tag = uuid.uuid4().hex[:8]
    every_other, oldest, two = f"kiwi{tag}", f"late{tag}", f"cassowary{tag}"
    for i in range(70):
        p = 69 - i   # position in -created_at order
        words = [every_other] * (p % 2 == 0) + [oldest] * (p >= 66) + [two] * (p in (3, 40))
        await api.create_ticket(agent, title=" ".join(words + [f"ticket {i}"]))
    want = {term: await reference(pool, org.id, term, "-created_at") for term in (every_other, oldest, two)}
    assert [len(want[t]) for t in (every_other, oldest, two)] == [35, 4, 2]
    async with tenant_transaction(pool, org.id) as conn:
        # A first walk of 5 rows (walk_rows) holds 3 matches: a page of 3, and no more.
        assert await search_page(conn, every_other, lim=3, walk_rows=5) == (want[every_other][:3], 1)
        ids, scans = await search_page(conn, every_other, lim=4, walk_rows=5)
        assert ids == want[every_other][:4] and scans >= 2
        # 70 rows: a walk of 71 reaches the end; one of 70 stops on the last row and cannot know.
        assert await search_page(conn, every_other, lim=40, walk_rows=71) == (want[every_other], 1)
        ids, scans = await search_page(conn, every_other, lim=40, walk_rows=70)
        assert ids == want[every_other] and scans >= 2
        # Walks of 10 rows (5 a result: 1 match), 40 (twice the 20 that density needs: still 1)
        # and 160 (all 70 rows: 2 matches); with walk_rows 30 the second stops at 30, short.
        assert await search_page(conn, two, lim=2, walk_rows=1000) == (want[two], 3)
        ids, scans = await search_page(conn, two, lim=2, walk_rows=30)
        assert ids == want[two] and scans >= 3
        # A first walk without a match: the index, for a rare term as for an absent one.
        ids, scans = await search_page(conn, oldest, lim=1, walk_rows=1000)
        assert ids == want[oldest][:1] and scans >= 2
        ids, scans = await search_page(conn, f"absent{tag}", lim=2, walk_rows=1000)
        assert ids == [] and scans >= 2
        ids, scans = await search_page(conn, every_other, lim=4, walk_rows=0)
        assert ids == want[every_other][:4] and scans >= 1


async def test_a_page_the_first_walk_fills_is_read_by_that_walk_alone(api, org, pool):
    """ticket_search (migration search_walk_under_policy) returns the rows its first walk matched
    itself, read under the policy: a page that walk fills costs one scan of the table, not one
    more per row. A walk that comes up short goes on from its last row (ticket_search_page, then
    the rows by id). Either way the page is the plain filter's."""
    agent = await org.user("agent")
    tag = uuid.uuid4().hex[:8]
    dense, sparse = f"emu{tag}", f"moa{tag}"
    for i in range(40):
        p = 39 - i   # position in -created_at order
        words = [dense] * (p % 2 == 0) + [sparse] * (p in (1, 30))
        await api.create_ticket(agent, title=" ".join(words + [f"ticket {i}"]))
    want = {term: await reference(pool, org.id, term, "-created_at") for term in (dense, sparse)}
    assert [len(want[t]) for t in (dense, sparse)] == [20, 2]

    async def first_page(conn, q: str, lim: int) -> tuple[list[str], int]:
        before = await conn.fetchval(SCANS)
        rows = await conn.fetch("SELECT id FROM ticket_search($1, $2, '-created_at', $3, NULL, NULL, NULL, NULL, "
                                "NULL, NULL, NULL, NULL, 10000)", org.id, q, lim)
        return [str(r[0]) for r in rows], await conn.fetchval(SCANS) - before
    async with tenant_transaction(pool, org.id) as conn:
        # A walk of 25 rows holds 13 matches: the page of 5 is read in it.
        assert await first_page(conn, dense, 5) == (want[dense][:5], 1)
        # A walk of 10 rows holds one match (position 1); the second (position 30) comes from
        # further on: the walk's last row, ticket_search_page's walk and index read, the probe.
        ids, scans = await first_page(conn, sparse, 2)
        assert ids == want[sparse] and scans >= 3
