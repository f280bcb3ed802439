"""API keys and platform staff through the gateway of a stack started like `make run`
(API.md, "API keys" and "Platform staff"): keys created, used, scoped, listed without the
secret, revoked and dead within 5 s, forged and unknown keys refused, the audit log naming the
key; staff granted by the command, read-only access audited with its reason, writes refused,
non-staff refused, revocation within 5 s."""
import asyncio
import secrets
import subprocess
import sys
import time
import uuid

import jwt

from shared.permissions import BUILTIN_ROLES, STAFF_PERMISSIONS
from tests.e2e.api import expect, join, scope, signup
from tests.stack import ROOT

MEMBER_PERMS = sorted(BUILTIN_ROLES["member"])


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def key_auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def audit_event(http, owner, type_: str, subject_id: str, timeout: float = 10.0) -> dict:
    """The audit log's event of this type and subject, as the organization's owner reads it."""
    deadline = time.monotonic() + timeout
    while True:
        body = await expect(await http.get(
            f"/v1/organizations/{owner.org_id}/audit-events?type={type_}&subject_id={subject_id}",
            headers=owner.auth), 200)
        if body["items"]:
            return body["items"][0]
        assert time.monotonic() < deadline, f"{type_} for {subject_id} never reached the audit log"
        await asyncio.sleep(0.2)


async def seconds_until(probe, wanted: int, limit: float = 5.0) -> float:
    """How long until ``probe()`` answers ``wanted`` (fails past ``limit`` seconds)."""
    start = time.monotonic()
    while True:
        status = await probe()
        elapsed = time.monotonic() - start
        if status == wanted:
            return elapsed
        assert elapsed < limit, f"still {status} after {elapsed:.1f}s"
        await asyncio.sleep(0.1)


async def test_api_key_lifecycle_scope_and_audit(http, stack, tap):
    owner = await signup(http, "key-owner", org_name=f"Keys {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    other = await signup(http, "key-other", org_name=f"Elsewhere {uuid.uuid4().hex[:6]}")
    other = await scope(http, other, other.org_id)
    admin = await join(http, owner, "admin")
    agent = await join(http, owner, "agent")
    keys_url = f"/v1/organizations/{owner.org_id}/api-keys"

    # Who may create what: api_keys:manage (agent: 403), never beyond the creator (an admin
    # lacks organization:delete: 403), only catalogue names (422), another organization 404.
    await expect(await http.post(keys_url, headers=agent.auth, json={"name": "x", "permissions": MEMBER_PERMS}), 403)
    await expect(await http.post(keys_url, headers=admin.auth,
                                 json={"name": "x", "permissions": ["organization:delete"]}), 403)
    await expect(await http.post(keys_url, headers=admin.auth, json={"name": "x", "permissions": ["tickets:fly"]}), 422)
    await expect(await http.post(keys_url, headers=admin.auth, json={"name": "x", "permissions": []}), 422)
    await expect(await http.post(keys_url, headers=other.auth, json={"name": "x", "permissions": MEMBER_PERMS}), 404)

    resp = await http.post(keys_url, headers=admin.auth,
                           json={"name": "CI robot", "permissions": MEMBER_PERMS, "expires_in_days": 30})
    created = await expect(resp, 201)
    assert resp.headers.get("Cache-Control") == "no-store"
    key = created["key"]
    assert key.startswith("sk_") and len(key) >= 3 + 43 and created["prefix"] == key[:12]
    assert created["permissions"] == MEMBER_PERMS and created["last_used_at"] is None
    assert created["expires_at"] and created["name"] == "CI robot"

    # Listed without the secret.
    resp = await http.get(keys_url, headers=admin.auth)
    listed = await expect(resp, 200)
    assert key not in await resp.text() and key[12:] not in await resp.text()
    item = next(i for i in listed["items"] if i["id"] == created["id"])
    assert "key" not in item and item["prefix"] == created["prefix"]

    # Used through the gateway: it acts as itself (events name the key, not a user).
    resp = await http.post("/v1/tickets", headers=key_auth(key), json={"title": "From CI", "description": "build 42"})
    ticket = await expect(resp, 201)
    assert resp.headers["RateLimit-Limit"] == "600"  # the per-key limit, not the user limit
    remaining = int(resp.headers["RateLimit-Remaining"])
    resp = await http.get(f"/v1/tickets/{ticket['id']}", headers=key_auth(key))
    await expect(resp, 200)
    assert int(resp.headers["RateLimit-Remaining"]) == remaining - 1
    # An admin's requests do not count against the key.
    resp = await http.get("/v1/tickets", headers=admin.auth)
    await expect(resp, 200)
    resp = await http.get(f"/v1/tickets/{ticket['id']}", headers=key_auth(key))
    assert int(resp.headers["RateLimit-Remaining"]) == remaining - 2
    await expect(await http.get(f"/v1/organizations/{owner.org_id}/members", headers=key_auth(key)), 200)
    event = await tap.wait_for(lambda e: e["type"] == "ticket.created" and e["subject"]["id"] == ticket["id"])
    assert event["actor"]["api_key_id"] == created["id"] and event["actor"]["user_id"] is None
    assert "staff" not in event["actor"]
    audited = await audit_event(http, owner, "ticket.created", ticket["id"])
    assert audited["actor"]["api_key_id"] == created["id"]
    made = await audit_event(http, owner, "api_key.created", created["id"])
    assert made["actor"]["user_id"] == admin.id and made["data"]["prefix"] == created["prefix"]
    assert key not in str(made)

    # Scoped: outside its permissions 403, another organization 404, user routes 403.
    etag = resp.headers["ETag"]
    await expect(await http.patch(f"/v1/tickets/{ticket['id']}", headers={**key_auth(key), "If-Match": etag},
                                  json={"status": "closed"}), 403)
    await expect(await http.delete(f"/v1/tickets/{ticket['id']}", headers=key_auth(key)), 403)
    await expect(await http.get(f"/v1/organizations/{owner.org_id}/audit-events", headers=key_auth(key)), 403)
    await expect(await http.get(f"/v1/organizations/{other.org_id}/members", headers=key_auth(key)), 404)
    theirs = await expect(
        await http.post("/v1/tickets", headers=other.auth, json={"title": "B", "description": "b"}), 201)
    await expect(await http.get(f"/v1/tickets/{theirs['id']}", headers=key_auth(key)), 404)
    for path in ("/v1/auth/me", "/v1/auth/sessions"):
        await expect(await http.get(path, headers=key_auth(key)), 403)
    await expect(await http.post("/v1/auth/logout", headers=key_auth(key)), 403)
    await expect(await http.get(keys_url, headers=key_auth(key)), 403)  # keys do not manage keys

    # Forged, unknown and malformed keys: 401, never a 500.
    for bad in ("sk_" + secrets.token_urlsafe(32), key[:-1] + ("A" if key[-1] != "A" else "B"), "sk_", "sk_a!b",
                "sk_" + "a" * 500):
        await expect(await http.get("/v1/tickets", headers=key_auth(bad)), 401)

    # last_used_at is reported off the request path (the stack flushes every second).
    deadline = time.monotonic() + 10
    while True:
        listed = await expect(await http.get(keys_url, headers=admin.auth), 200)
        used = next(i for i in listed["items"] if i["id"] == created["id"])["last_used_at"]
        if used:
            break
        assert time.monotonic() < deadline, "last_used_at never moved"
        await asyncio.sleep(0.3)

    # Revoked: dead within 5 s (in fact at the next request), gone from the list, audited.
    await expect(await http.get("/v1/tickets", headers=key_auth(key)), 200)  # cached at the gateway
    await expect(await http.delete(f"{keys_url}/{created['id']}", headers=admin.auth), 204)
    took = await seconds_until(lambda: _status(http, "/v1/tickets", key_auth(key)), 401)
    assert took < 5
    await expect(await http.delete(f"{keys_url}/{created['id']}", headers=admin.auth), 404)
    listed = await expect(await http.get(keys_url, headers=admin.auth), 200)
    assert created["id"] not in [i["id"] for i in listed["items"]]
    revoked = await audit_event(http, owner, "api_key.revoked", created["id"])
    assert revoked["actor"]["user_id"] == admin.id
    log = stack.log_path.read_text(errors="replace")
    assert key[12:] not in log, "an API key reached the logs"
    assert f'"api_key_prefix": "{created["prefix"]}"' in log   # the prefix names the key in the logs


async def _status(http, path, headers) -> int:
    async with http.get(path, headers=headers) as resp:
        return resp.status


def staff_command(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auth_service", "staff", *args], env=stack.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


async def test_platform_staff_read_only_access_is_audited_and_revocable(http, stack, tap):
    owner = await signup(http, "staffed-owner", org_name=f"Staffed {uuid.uuid4().hex[:8]}")
    owner = await scope(http, owner, owner.org_id)
    org_name = (await expect(await http.get(f"/v1/organizations/{owner.org_id}", headers=owner.auth), 200))["name"]
    operator = await signup(http, "operator")
    body = {"organization_id": owner.org_id, "reason": "Customer ticket #4711: export looks wrong"}

    # Not staff: 403 on both routes (an owner of the organization included).
    await expect(await http.get("/v1/admin/organizations", headers=operator.auth), 403)
    await expect(await http.post("/v1/admin/access", headers=operator.auth, json=body), 403)
    await expect(await http.get("/v1/admin/organizations", headers=owner.auth), 403)

    # Granted only by the command.
    done = await asyncio.to_thread(staff_command, stack, "grant", operator.email.upper())
    assert done.returncode == 0, done.stderr
    listed = await asyncio.to_thread(staff_command, stack, "list")
    assert operator.email in listed.stdout
    missing = await asyncio.to_thread(staff_command, stack, "grant", "nobody-here@e2e.example")
    assert missing.returncode == 1 and "no account" in missing.stderr

    found = await expect(await http.get(f"/v1/admin/organizations?q={org_name.split()[1]}",
                                        headers=operator.auth), 200)
    assert [(o["id"], o["name"], o["member_count"], o["deleted_at"]) for o in found["items"]] == [
        (owner.org_id, org_name, 1, None)]
    page = await expect(await http.get("/v1/admin/organizations?limit=1", headers=operator.auth), 200)
    assert len(page["items"]) == 1 and page["next_cursor"]
    await expect(await http.get("/v1/admin/organizations?limit=0", headers=operator.auth), 422)
    await expect(await http.get("/v1/admin/organizations?cursor=forged", headers=operator.auth), 422)
    await expect(await http.get("/v1/admin/organizations?bogus=1", headers=operator.auth), 422)
    await expect(await http.post("/v1/admin/access", headers=operator.auth,
                                 json={"organization_id": str(uuid.uuid4()), "reason": "x"}), 404)
    await expect(await http.post("/v1/admin/access", headers=operator.auth,
                                 json={"organization_id": owner.org_id, "reason": "  "}), 422)

    resp = await http.post("/v1/admin/access", headers=operator.auth, json=body)
    tokens = (await expect(resp, 201))["tokens"]
    assert tokens["refresh_token"] is None and tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer"
    c = claims(tokens["access_token"])
    assert (c["tid"], c["role"], c["staff"], c["sub"]) == (owner.org_id, "staff", True, operator.id)
    assert sorted(c["perms"]) == sorted(STAFF_PERMISSIONS) and c["exp"] - c["iat"] == 1800
    staff = {"Authorization": f"Bearer {tokens['access_token']}"}

    # The grant and its reason are in that organization's audit log.
    granted = await audit_event(http, owner, "staff.access_granted", owner.org_id)
    assert granted["tenant_id"] == owner.org_id and granted["data"]["reason"] == body["reason"]
    assert granted["actor"]["user_id"] == operator.id and granted["actor"]["staff"] is True

    # Every write answers 403, whatever the route.
    await expect(await http.post("/v1/tickets", headers=staff, json={"title": "t", "description": "d"}), 403)
    await expect(await http.patch(f"/v1/organizations/{owner.org_id}", headers=staff, json={"name": "Hijacked"}), 403)
    await expect(await http.delete(f"/v1/organizations/{owner.org_id}", headers=staff), 403)
    await expect(await http.post(f"/v1/organizations/{owner.org_id}/invitations", headers=staff,
                                 json={"email": "x@e2e.example", "role": "admin"}), 403)
    await expect(await http.post("/v1/admin/access", headers=staff, json=body), 403)

    # Revoked by the command: the token already issued stops within 5 s, new grants are refused.
    me = await expect(await http.get("/v1/auth/me", headers=staff), 200)
    assert (me["id"], me["organization_id"], me["role"]) == (operator.id, owner.org_id, "staff")
    assert me["permissions"] == sorted(STAFF_PERMISSIONS)
    done = await asyncio.to_thread(staff_command, stack, "revoke", operator.email)
    assert done.returncode == 0, done.stderr
    took = await seconds_until(lambda: _status(http, "/v1/auth/me", staff), 401)
    assert took < 5
    await expect(await http.post("/v1/admin/access", headers=operator.auth, json=body), 403)
    await expect(await http.get("/v1/admin/organizations", headers=operator.auth), 403)
    listed = await asyncio.to_thread(staff_command, stack, "list")
    assert operator.email not in listed.stdout


async def test_staff_reads_tickets_members_and_audit_through_row_level_security(http, stack):
    owner = await signup(http, "read-owner", org_name=f"Readable {uuid.uuid4().hex[:8]}")
    owner = await scope(http, owner, owner.org_id)
    ticket = await expect(await http.post("/v1/tickets", headers=owner.auth,
                                          json={"title": "Visible to staff", "description": "d"}), 201)
    await expect(await http.post(f"/v1/tickets/{ticket['id']}/comments", headers=owner.auth,
                                 json={"body": "internal note", "internal": True}), 201)
    operator = await signup(http, "reader-operator")
    assert (await asyncio.to_thread(staff_command, stack, "grant", operator.email)).returncode == 0
    tokens = (await expect(await http.post("/v1/admin/access", headers=operator.auth,
                                           json={"organization_id": owner.org_id, "reason": "audit"}), 201))["tokens"]
    staff = {"Authorization": f"Bearer {tokens['access_token']}"}
    listed = await expect(await http.get("/v1/tickets", headers=staff), 200)
    assert ticket["id"] in [t["id"] for t in listed["items"]]
    comments = await expect(await http.get(f"/v1/tickets/{ticket['id']}/comments", headers=staff), 200)
    assert [c["internal"] for c in comments["items"]] == [True]
    await expect(await http.get(f"/v1/organizations/{owner.org_id}/members", headers=staff), 200)
    await expect(await http.get(f"/v1/organizations/{owner.org_id}/audit-events", headers=staff), 200)
