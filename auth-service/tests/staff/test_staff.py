"""Platform staff: granted and revoked only by the command (python -m auth_service staff), the
admin routes refused to everyone else, read-only access tokens recorded with their reason in the
organization's events, and revocation raising the rv:st mark the gateway reads."""
import asyncio
import time
import uuid

import jwt

from auth_service.staff.cli import cli
from shared import redis_keys
from shared.permissions import STAFF_PERMISSIONS


async def run(settings, *argv) -> int:
    return await asyncio.to_thread(cli, list(argv), settings)


async def test_command_grants_lists_and_revokes(settings, signup, capsys, redis):
    acct = await signup()
    assert await run(settings, "grant", "  " + acct.email.upper()) == 0
    assert await run(settings, "grant", acct.email) == 0          # idempotent
    assert "already" in capsys.readouterr().out
    assert await run(settings, "list") == 0
    assert acct.email in capsys.readouterr().out
    before_ms = int(time.time() * 1000)
    assert await run(settings, "revoke", acct.email) == 0
    assert "no longer platform staff" in capsys.readouterr().out
    mark = int(await redis.get(redis_keys.staff_stale(acct.id)))
    assert mark >= before_ms
    assert 1800 < await redis.ttl(redis_keys.staff_stale(acct.id)) <= 1800 + settings.jwt_leeway_s
    assert await run(settings, "list") == 0
    assert acct.email not in capsys.readouterr().out
    assert await run(settings, "grant", "nobody-" + uuid.uuid4().hex + "@example.com") == 1
    assert await run(settings, "grant") == 2
    assert await run(settings, "promote", acct.email) == 2


async def test_admin_routes_are_refused_to_non_staff(client, signup):
    acct = await signup(organization_name=f"Plain {uuid.uuid4().hex[:6]}")
    resp = await client.get("/v1/admin/organizations", headers=acct.auth)
    assert resp.status == 403 and (await resp.json())["type"].endswith("/staff-only")
    resp = await client.post("/v1/admin/access", headers=acct.auth,
                             json={"organization_id": acct.organization_id, "reason": "curious"})
    assert resp.status == 403
    assert (await client.get("/v1/admin/organizations")).status == 401


async def test_staff_lists_organizations_and_gets_audited_read_only_access(client, signup, settings, events, redis):
    name = f"Customer {uuid.uuid4().hex[:8]}"
    customer = await signup(organization_name=name)
    operator = await signup()
    assert await run(settings, "grant", operator.email) == 0

    resp = await client.get(f"/v1/admin/organizations?q={name.split()[1].upper()}", headers=operator.auth)
    assert resp.status == 200
    body = await resp.json()
    assert [(o["id"], o["name"], o["member_count"], o["deleted_at"]) for o in body["items"]] == [
        (customer.organization_id, name, 1, None)]
    assert body["next_cursor"] is None
    for bad in ("limit=0", "limit=101", "cursor=forged", "unknown=1", "q="):
        assert (await client.get(f"/v1/admin/organizations?{bad}", headers=operator.auth)).status == 422, bad

    reason = "Support case 4711: the customer asked us to look"
    resp = await client.post("/v1/admin/access", headers=operator.auth,
                             json={"organization_id": customer.organization_id, "reason": reason})
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    tokens = (await resp.json())["tokens"]
    assert tokens["refresh_token"] is None and tokens["expires_in"] == 1800
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["tid"] == customer.organization_id and claims["role"] == "staff" and claims["staff"] is True
    assert claims["perms"] == sorted(STAFF_PERMISSIONS) and claims["exp"] - claims["iat"] == 1800
    (event,) = [e for e in await events("staff.access_granted", customer.organization_id)]
    assert event["tenant_id"] == customer.organization_id and event["data"]["reason"] == reason
    assert event["actor"] == {"user_id": operator.id, "ip": "127.0.0.1", "staff": True}

    # Read-only, enforced in shared.auth for every service: any write answers 403.
    staff = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = await (await client.get("/v1/auth/me", headers=staff)).json()
    assert me["role"] == "staff" and me["permissions"] == sorted(STAFF_PERMISSIONS)
    resp = await client.post("/v1/admin/access", headers=staff,
                             json={"organization_id": customer.organization_id, "reason": "again"})
    assert resp.status == 403 and (await resp.json())["type"].endswith("/staff-read-only")
    assert (await client.post("/v1/auth/logout-all", headers=staff)).status == 403

    for body, status in (({"organization_id": str(uuid.uuid4()), "reason": "x"}, 404),
                         ({"organization_id": customer.organization_id, "reason": " "}, 422),
                         ({"organization_id": customer.organization_id}, 422),
                         ({"organization_id": "nope", "reason": "x"}, 422)):
        resp = await client.post("/v1/admin/access", headers=operator.auth, json=body)
        assert resp.status == status, body

    assert await run(settings, "revoke", operator.email) == 0
    resp = await client.post("/v1/admin/access", headers=operator.auth,
                             json={"organization_id": customer.organization_id, "reason": reason})
    assert resp.status == 403
    assert int(await redis.get(redis_keys.staff_stale(operator.id))) >= claims["iat_ms"]
