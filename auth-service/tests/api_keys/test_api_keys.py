"""API keys in auth-service: created (shown once, stored as a hash), listed, revoked (rv:ak
written), resolved for the gateway into a token carrying akid/tid/perms, refused once revoked
or expired, and last_used_at moved at most once a minute."""
import asyncio
import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from auth_service.api_keys.service import API_KEYS
from auth_service.consumers.memberships import membership_handler
from auth_service.revocation import REVOCATIONS
from auth_service.sessions.service import SESSIONS
from shared import redis_keys
from shared.db import DB_POOL
from shared.messaging import Event
from shared.permissions import BUILTIN_ROLES

MEMBER = sorted(BUILTIN_ROLES["member"])


@pytest.fixture
def internal(settings) -> dict:
    return {"X-Internal-Token": settings.internal_api_token.get_secret_value()}


async def owner(signup):
    return await signup(organization_name=f"Keys {uuid.uuid4().hex[:6]}")


async def create(client, acct, **body):
    body.setdefault("name", "robot")
    body.setdefault("permissions", MEMBER)
    return await client.post(f"/v1/organizations/{acct.organization_id}/api-keys", headers=acct.auth, json=body)


async def test_created_key_is_shown_once_and_stored_only_as_its_hash(client, signup, admin_db, events):
    acct = await owner(signup)
    resp = await create(client, acct, name="  CI robot ", expires_in_days=7)
    assert resp.status == 201
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    key = body["key"]
    assert key.startswith("sk_") and len(key) == 3 + 43 and body["prefix"] == key[:12]
    assert body["name"] == "CI robot" and body["permissions"] == MEMBER and body["last_used_at"] is None
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=7) - timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(days=7)
    row = await admin_db.fetchrow("SELECT * FROM auth.api_key WHERE id = $1", uuid.UUID(body["id"]))
    assert bytes(row["key_hash"]) == hashlib.sha256(key.encode()).digest()
    assert key not in str(dict(row))
    (event,) = await events("api_key.created", body["id"])
    assert event["tenant_id"] == acct.organization_id and event["actor"]["user_id"] == acct.id
    assert event["data"]["prefix"] == body["prefix"] and key not in str(event)

    listed = await (await client.get(f"/v1/organizations/{acct.organization_id}/api-keys", headers=acct.auth)).json()
    assert [i["id"] for i in listed["items"]] == [body["id"]] and "key" not in listed["items"][0]


async def test_keys_are_distinct_over_many_concurrent_creations(client, signup):
    acct = await owner(signup)
    answers = await asyncio.gather(*(create(client, acct, name=f"k{i}") for i in range(20)))
    keys = [(await r.json())["key"] for r in answers]
    assert len(set(keys)) == 20 and len({k[:12] for k in keys}) == 20


async def test_invalid_requests_are_4xx(client, signup):
    acct = await owner(signup)
    for body, status in (({"permissions": ["nope:nothing"]}, 422), ({"permissions": []}, 422),
                         ({"name": "   "}, 422), ({"expires_in_days": 0}, 422), ({"expires_in_days": 99999}, 422),
                         ({"extra": 1}, 422)):
        resp = await create(client, acct, **body)
        assert resp.status == status, body
    stranger = await owner(signup)
    assert (await create(client, stranger, name="x")).status == 201
    resp = await client.post(f"/v1/organizations/{acct.organization_id}/api-keys", headers=stranger.auth,
                             json={"name": "x", "permissions": MEMBER})
    assert resp.status == 404
    no_org = await signup()
    resp = await client.get(f"/v1/organizations/{acct.organization_id}/api-keys", headers=no_org.auth)
    assert resp.status == 404
    assert (await client.get("/v1/organizations/not-a-uuid/api-keys", headers=acct.auth)).status == 404
    page = await client.get(f"/v1/organizations/{acct.organization_id}/api-keys?cursor=forged", headers=acct.auth)
    assert page.status == 422


async def test_resolution_is_internal_and_answers_a_token_for_live_keys_only(client, signup, admin_db, redis, internal):
    acct = await owner(signup)
    body = await (await create(client, acct)).json()
    key = body["key"]
    assert (await client.post("/internal/api-keys/resolve", json={"key": key})).status == 401
    resp = await client.post("/internal/api-keys/resolve", headers=internal, json={"key": key})
    assert resp.status == 200
    answer = await resp.json()
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert (claims["akid"], claims["sub"], claims["sid"]) == (body["id"],) * 3
    assert claims["tid"] == acct.organization_id and claims["perms"] == MEMBER and "role" not in claims
    assert claims["exp"] - claims["iat"] == answer["expires_in"] == 300

    # The key's token is not a user: account routes and key management refuse it.
    as_key = {"Authorization": f"Bearer {answer['access_token']}"}
    assert (await client.get("/v1/auth/me", headers=as_key)).status == 403
    assert (await client.get(f"/v1/organizations/{acct.organization_id}/api-keys", headers=as_key)).status == 403

    for unknown in ("sk_" + "A" * 43, "not-a-key", key + "x"):
        resp = await client.post("/internal/api-keys/resolve", headers=internal, json={"key": unknown})
        assert resp.status == 404, unknown

    # Expiring soon: the token ends with the key. Expired: refused.
    await admin_db.execute("UPDATE auth.api_key SET expires_at = now() + interval '40 seconds' WHERE id = $1",
                           uuid.UUID(body["id"]))
    answer = await (await client.post("/internal/api-keys/resolve", headers=internal, json={"key": key})).json()
    assert 35 <= answer["expires_in"] <= 40
    await admin_db.execute("UPDATE auth.api_key SET expires_at = now() - interval '1 second' WHERE id = $1",
                           uuid.UUID(body["id"]))
    assert (await client.post("/internal/api-keys/resolve", headers=internal, json={"key": key})).status == 404


async def test_revocation_marks_redis_and_the_key_no_longer_resolves(client, signup, redis, events, internal):
    acct = await owner(signup)
    body = await (await create(client, acct)).json()
    url = f"/v1/organizations/{acct.organization_id}/api-keys/{body['id']}"
    stranger = await owner(signup)
    assert (await client.delete(f"/v1/organizations/{stranger.organization_id}/api-keys/{body['id']}",
                                headers=stranger.auth)).status == 404
    assert (await client.delete(url, headers=acct.auth)).status == 204
    assert await redis.get(redis_keys.api_key_revoked(body["id"])) == b"1"
    assert 300 < await redis.ttl(redis_keys.api_key_revoked(body["id"])) <= 300 + 10 + 60
    assert (await client.post("/internal/api-keys/resolve", headers=internal, json={"key": body["key"]})).status == 404
    assert (await client.delete(url, headers=acct.auth)).status == 404
    listed = await (await client.get(f"/v1/organizations/{acct.organization_id}/api-keys", headers=acct.auth)).json()
    assert listed["items"] == []
    (event,) = await events("api_key.revoked", body["id"])
    assert event["actor"]["user_id"] == acct.id and event["data"]["prefix"] == body["prefix"]


async def test_last_used_at_moves_at_most_once_a_minute(client, signup, admin_db, internal):
    acct = await owner(signup)
    body = await (await create(client, acct)).json()
    key_id = uuid.UUID(body["id"])
    now_ms = int(time.time() * 1000)

    async def report(at_ms):
        resp = await client.post("/internal/api-keys/usage", headers=internal,
                                 json={"items": [{"id": body["id"], "used_at": at_ms}]})
        assert resp.status == 204
        return await admin_db.fetchval("SELECT last_used_at FROM auth.api_key WHERE id = $1", key_id)

    first = await report(now_ms - 120_000)
    assert first is not None
    # Several gateway replicas reporting at once: still one write per minute.
    await asyncio.gather(*(report(now_ms - 120_000 + i * 1000) for i in range(1, 30)))
    assert await admin_db.fetchval("SELECT last_used_at FROM auth.api_key WHERE id = $1", key_id) == first
    later = await report(now_ms)
    assert later > first
    assert (await client.post("/internal/api-keys/usage", json={"items": []})).status == 401
    resp = await client.post("/internal/api-keys/usage", headers=internal, json={"items": [{"id": "x"}]})
    assert resp.status == 422


async def test_deleted_organization_revokes_its_keys(client, signup, redis, internal):
    doomed, bystander = await owner(signup), await owner(signup)
    keys = [await (await create(client, acct)).json() for acct in (doomed, doomed, bystander)]
    app = client.server.app
    handler = membership_handler(app[SESSIONS], app[REVOCATIONS], app[API_KEYS])
    ev = Event(id=uuid.uuid4(), type="organization.deleted", occurred_at=datetime.now(UTC),
               source="tenant-service", tenant_id=doomed.organization_id, actor={},
               subject={"type": "organization", "id": doomed.organization_id}, data={})
    async with app[DB_POOL].acquire() as conn, conn.transaction():
        await handler(conn, ev)
    for k, alive in zip(keys, (False, False, True), strict=True):
        resp = await client.post("/internal/api-keys/resolve", headers=internal, json={"key": k["key"]})
        assert resp.status == (200 if alive else 404)
        assert (await redis.get(redis_keys.api_key_revoked(k["id"])) is None) == alive
