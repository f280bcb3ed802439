"""POST /v1/auth/signup: validation, email uniqueness, and the organization all or nothing."""
import uuid

import pytest

from shared.permissions import BUILTIN_ROLES


async def test_signup_returns_user_and_tokens_and_records_event(client, signup, events, bearer):
    acct = await signup()
    assert acct.body["user"]["email"] == acct.email
    assert acct.body["organization"] is None
    tokens = acct.body["tokens"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    me = await client.get("/v1/auth/me", headers=bearer(acct.access_token))
    assert me.status == 200
    assert await me.json() == {"id": acct.id, "email": acct.email, "name": "Test User", "email_verified": False,
                               "organization_id": None, "role": None, "permissions": []}
    [ev] = await events("user.registered", acct.id)
    assert ev["data"] == {"user_id": acct.id, "email": acct.email, "name": "Test User"}
    assert ev["source"] == "auth-service" and ev["tenant_id"] is None


async def test_signup_with_organization_makes_the_user_its_owner(client, signup, tenant_client, bearer):
    name = f"Acme {uuid.uuid4().hex[:6]}"
    acct = await signup(organization_name=name)
    org = acct.body["organization"]
    assert org["name"] == name and org["slug"] and org["id"]
    me = await (await client.get("/v1/auth/me", headers=bearer(acct.access_token))).json()
    assert me["organization_id"] == org["id"] and me["role"] == "owner"
    assert me["permissions"] == sorted(BUILTIN_ROLES["owner"])
    # tenant-service accepts the token (it verifies through auth's JWKS) and agrees.
    resp = await tenant_client.get("/v1/organizations", headers=bearer(acct.access_token))
    assert resp.status == 200
    assert [(o["id"], o["role"]) for o in (await resp.json())["items"]] == [(org["id"], "owner")]


async def test_email_taken_is_409_case_insensitively_and_trimmed(client, signup, new_email):
    email = new_email()
    await signup(email=email)
    resp = await client.post("/v1/auth/signup", json={"email": f"  {email.upper()} ",
                                                      "password": "another fine passphrase", "name": "Other"})
    assert resp.status == 409
    body = await resp.json()
    assert resp.content_type == "application/problem+json" and body["status"] == 409
    assert body["errors"] == [{"field": "email", "message": "is already registered"}]


async def test_email_is_stored_lowercase_and_login_accepts_any_case(client, new_email):
    email = new_email()
    resp = await client.post("/v1/auth/signup", json={"email": f"  {email.upper()}  ",
                                                      "password": "correct horse battery", "name": "Ada"})
    assert resp.status == 201
    assert (await resp.json())["user"]["email"] == email
    resp = await client.post("/v1/auth/login", json={"email": email.title(), "password": "correct horse battery"})
    assert resp.status == 200


@pytest.mark.parametrize("body, field", [
    ({"password": "correct horse battery", "name": "A"}, "email"),
    ({"email": "not-an-email", "password": "correct horse battery", "name": "A"}, "email"),
    ({"email": "x@example.com", "password": "short", "name": "A"}, "password"),
    ({"email": "x@example.com", "password": "x" * 129, "name": "A"}, "password"),
    ({"email": "x@example.com", "password": "password123", "name": "A"}, "password"),
    ({"email": "x@example.com", "password": "QwertyUiop", "name": "A"}, "password"),
    ({"email": "x@example.com", "password": "PassWord123", "name": "A"}, "password"),
    ({"email": "x@example.com", "password": "correct horse battery", "name": "   "}, "name"),
    ({"email": "x@example.com", "password": "correct horse battery"}, "name"),
    ({"email": "x@example.com", "password": "correct horse battery", "name": "A", "organization_name": ""},
     "organization_name"),
    ({"email": "x@example.com", "password": "correct horse battery", "name": "A", "role": "owner"}, "role"),
    ({"email": "x@example.com", "password": 12345678901, "name": "A"}, "password"),
])
async def test_signup_validation_is_422_naming_the_field(client, body, field):
    resp = await client.post("/v1/auth/signup", json=body)
    assert resp.status == 422
    problem = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert field in [e["field"] for e in problem["errors"]]
    assert "correct horse" not in await resp.text()


async def test_malformed_json_is_400_and_other_media_types_415(client):
    resp = await client.post("/v1/auth/signup", data="{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post("/v1/auth/signup", data="email=a",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415


async def test_tenant_down_leaves_no_account_and_a_retry_succeeds(
        make_settings, start_app, client, admin_db, new_email):
    from aiohttp.test_utils import unused_port
    down = await start_app(make_settings(tenant_url=f"http://127.0.0.1:{unused_port()}", tenant_timeout_s=0.5))
    email, name = new_email(), f"Down {uuid.uuid4().hex[:6]}"
    body = {"email": email, "password": "correct horse battery", "name": "Ada", "organization_name": name}
    resp = await down.post("/v1/auth/signup", json=body)
    assert resp.status == 503
    assert resp.content_type == "application/problem+json"
    assert await admin_db.fetchval("SELECT count(*) FROM auth.user_account WHERE email = $1", email) == 0
    assert await admin_db.fetchval(
        "SELECT count(*) FROM auth.outbox WHERE routing_key = 'user.registered' AND payload->'data'->>'email' = $1",
        email) == 0
    resp = await client.post("/v1/auth/signup", json=body)
    assert resp.status == 201
    data = await resp.json()
    assert data["organization"]["name"] == name


async def test_local_failure_after_the_organization_exists_is_compensated(make_settings, settings, start_app,
                                                                         admin_db, new_email):
    import asyncpg

    from auth_service.sessions.service import SESSIONS
    c = await start_app(make_settings(tenant_url=settings.tenant_url))

    async def broken_open_session(*args, **kwargs):
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost (simulated)")
    c.server.app[SESSIONS].open_session = broken_open_session
    email, name = new_email(), f"Comp {uuid.uuid4().hex[:6]}"
    resp = await c.post("/v1/auth/signup", json={"email": email, "password": "correct horse battery", "name": "Ada",
                                                 "organization_name": name})
    assert resp.status == 503
    assert await admin_db.fetchval("SELECT count(*) FROM auth.user_account WHERE email = $1", email) == 0
    # tenant-service created it, and the compensation removed it again.
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.outbox WHERE routing_key = 'organization.created' "
                                   "AND payload->'data'->>'name' = $1", name) == 1
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.organization WHERE name = $1", name) == 0


async def test_a_slow_tenant_service_holds_no_connection_or_transaction(make_settings, settings, start_app, signup,
                                                                       admin_db, new_email):
    """Signups waiting on a slow tenant-service (a real one, behind a proxy that delays every
    chunk) hold no pooled connection and no open transaction: other requests on a 2-connection
    pool still answer at once, and PostgreSQL shows no auth connection idle in a transaction."""
    import asyncio
    import time
    from urllib.parse import urlsplit

    from shared.testing import TEST_DATABASE, TcpProxy
    target = urlsplit(settings.tenant_url)
    proxy = await TcpProxy(target.hostname, target.port).start()
    proxy.delay_s = 1.5
    try:
        slow = await start_app(make_settings(tenant_url=f"http://127.0.0.1:{proxy.port}", tenant_timeout_s=20,
                                             db_pool_min=1, db_pool_max=2))
        me = await signup(c=slow)
        signups = [asyncio.create_task(slow.post("/v1/auth/signup", json={
            "email": new_email(), "password": "correct horse battery", "name": "Slow",
            "organization_name": f"Slow {uuid.uuid4().hex[:6]}"})) for _ in range(4)]
        await asyncio.sleep(1.0)
        assert not any(t.done() for t in signups)
        in_tx = await admin_db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = 'auth_app' "
            "AND state LIKE 'idle in transaction%'", TEST_DATABASE)
        assert in_tx == 0, f"{in_tx} auth connections sat in a transaction while tenant-service was slow"
        started = time.monotonic()
        for _ in range(5):
            resp = await asyncio.wait_for(slow.get("/v1/auth/me", headers=me.auth), timeout=10)
            assert resp.status == 200
        elapsed = time.monotonic() - started
        assert not any(t.done() for t in signups), "the probe must run while the signups wait"
        assert elapsed < 1.0, f"5 reads took {elapsed:.2f}s while signups waited on tenant-service"
        for resp in await asyncio.gather(*signups):
            assert resp.status == 201, await resp.text()
    finally:
        await proxy.close()


async def test_a_taken_email_never_reaches_tenant_service(client, signup, admin_db):
    acct = await signup()
    name = f"Dup {uuid.uuid4().hex[:6]}"
    resp = await client.post("/v1/auth/signup", json={"email": acct.email, "password": "correct horse battery",
                                                      "name": "Dup", "organization_name": name})
    assert resp.status == 409
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.outbox WHERE routing_key = 'organization.created' "
                                   "AND payload->'data'->>'name' = $1", name) == 0
