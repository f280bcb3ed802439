"""A ticket keeps its API representation (migration ticket_representation, issue 16): the JSON
text of the Ticket, written by PostgreSQL with the row. List pages join these texts instead of
decoding every column and serializing it again, so the text must be, byte for byte, what the
service writes for the same row (shared.web.dumps_json of TicketRow.representation, which
test_one_statement_paths holds equal to the documented TicketOut), and it must follow every write."""
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.web import dumps_json
from ticket_service.tickets.repository import TicketRow

REPRESENT = "SELECT ticket.ticket_representation($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"

# Every character that JSON escapes or a writer might (the controls, quote, backslash, slash, DEL,
# the C1 controls, the line and paragraph separators, a byte order mark, the last BMP character,
# one beyond it), each alone and in a run.
EDGES = [chr(c) for c in range(1, 0x80)] + ["\x80", "\x9f", "\u00e9", "\u2028", "\u2029", "\ufeff", "\uffff",
                                            "\U0001f600", "Zoë's \"quoted\" \\ path/to\n\ttab"]
MOMENTS = [datetime(2026, 11, 30, 9, 0, 0, 0, tzinfo=UTC), datetime(2026, 11, 30, 9, 0, 0, 1, tzinfo=UTC),
           datetime(2026, 11, 30, 9, 0, 0, 100000, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
           datetime(2000, 2, 29, 0, 0, 0, 10, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC),
           datetime(9998, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)]


def text(rng: random.Random) -> str:
    pool = EDGES + [chr(rng.randrange(0x20, 0xD800)) for _ in range(8)]
    return "".join(rng.choice(pool) for _ in range(rng.randrange(0, 12)))


def row(rng: random.Random, title: str | None = None) -> TicketRow:
    return TicketRow(
        id=uuid.UUID(int=rng.getrandbits(128)), org_id=uuid.uuid4(), number=rng.choice([1, rng.randrange(1, 2 ** 62)]),
        title=text(rng) if title is None else title, description=text(rng),
        status=rng.choice(["open", "in_progress", "pending", "resolved", "closed"]),
        priority=rng.choice(["low", "normal", "high", "urgent"]), priority_rank=2,
        tags=[text(rng) for _ in range(rng.randrange(0, 4))], requester_id=uuid.uuid4(),
        assignee_id=rng.choice([None, uuid.uuid4()]),
        created_at=rng.choice(MOMENTS + [MOMENTS[0] + timedelta(microseconds=rng.randrange(10 ** 12))]),
        updated_at=rng.choice(MOMENTS + [MOMENTS[1] + timedelta(seconds=rng.randrange(10 ** 8))]),
        version=rng.randrange(1, 2 ** 31), deleted_at=None)


def arguments(r: TicketRow) -> tuple:
    return (r.id, r.number, r.title, r.description, r.status, r.priority, r.tags, r.requester_id, r.assignee_id,
            r.created_at, r.updated_at, r.version)


@pytest.mark.parametrize("zone, search_path", [("UTC", "ticket"), ("America/St_Johns", "ticket"),
                                               ("Asia/Kathmandu", "")])
async def test_the_database_writes_the_representation_the_service_writes(admin_db, zone, search_path):
    """Whatever the session's time zone, and with no search path at all (as a restore loads rows):
    every edge character alone, then 400 seeded random rows."""
    rng = random.Random(f"representation-{zone}")
    rows = [row(rng, title=c) for c in EDGES] + [row(rng) for _ in range(400)]
    async with admin_db.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL TIME ZONE '{zone}'")
        await conn.execute(f"SET LOCAL search_path = '{search_path}'")
        for r in rows:
            assert await conn.fetchval(REPRESENT, *arguments(r)) == dumps_json(r.representation()).decode(), r


async def test_the_representation_follows_every_write(api, org, admin_db):
    """Created, changed field by field, deleted and restored: after each write the stored text is
    the GET's body, byte for byte. No one can write it by hand."""
    owner, agent = await org.user("owner"), await org.user("agent")
    ticket = await api.create_ticket(owner, title="Zoë's \u2028 \"printer\"", description="a\\b\n", tags=["ü", "x"])
    url = f"/v1/tickets/{ticket['id']}"

    async def stored() -> str:
        return await admin_db.fetchval("SELECT representation FROM ticket.ticket WHERE id = $1",
                                       uuid.UUID(ticket["id"]))

    async def same_as_get() -> None:
        resp = await api.get(owner, ticket["id"])
        assert resp.status == 200
        assert (await stored()).encode() == await resp.read()

    await same_as_get()
    for change in ({"title": "t\x01\x1f"}, {"assignee_id": str(agent.id)}, {"status": "pending"},
                   {"priority": "urgent", "tags": []}, {"description": ""}, {"assignee_id": None}):
        resp = await api.patch(owner, ticket, change)
        assert resp.status == 200, await resp.text()
        ticket = await resp.json()
        await same_as_get()
    assert (await api.client.delete(url, headers={**owner.auth, "If-Match": f'"{ticket["version"]}"'})).status == 204
    deleted = json.loads(await stored())
    assert deleted["version"] == ticket["version"] + 1 and deleted["updated_at"] != ticket["updated_at"]
    assert (await api.client.post(f"{url}/restore", headers=owner.auth)).status == 200
    await same_as_get()
    with pytest.raises(asyncpg.GeneratedAlwaysError):
        await admin_db.execute("UPDATE ticket.ticket SET representation = '{}' WHERE id = $1", uuid.UUID(ticket["id"]))
