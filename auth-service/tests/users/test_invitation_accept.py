"""Open the invitation link, sign up, accept: tenant-service here never receives
`user.registered` (its users consumer is off in this suite), so every accept below depends on
tenant-service fetching the profile from auth-service's internal route; the real apps, the real
database. A missing profile is never reported as a wrong email."""
import asyncio
import uuid

from aiohttp.test_utils import TestClient, TestServer, unused_port

from shared.testing import test_settings
from tenant_service.app import create_app as create_tenant_app
from tenant_service.config import Settings as TenantSettings


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


async def invite(tenant_client, owner, email, role="agent") -> str:
    resp = await tenant_client.post(f"/v1/organizations/{owner.organization_id}/invitations", headers=owner.auth,
                                    json={"email": email, "role": role})
    assert resp.status == 201, await resp.text()
    return (await resp.json())["token"]


async def test_accept_right_after_signup_without_the_event(signup, tenant_client, admin_db):
    owner = await signup(organization_name=f"Inv {uuid.uuid4().hex[:6]}")
    email = unique_email("invitee")
    token = await invite(tenant_client, owner, email)
    user = await signup(email=email.upper())
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.user_profile WHERE user_id = $1",
                                   uuid.UUID(user.id)) == 0
    resp = await tenant_client.post("/v1/invitations/accept", headers=user.auth, json={"token": token})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["organization_id"] == owner.organization_id and body["role"] == "agent"
    # The fetched profile is kept: the event, when it comes, finds it and changes nothing.
    row = await admin_db.fetchrow("SELECT email, name FROM tenant.user_profile WHERE user_id = $1", uuid.UUID(user.id))
    assert dict(row) == {"email": email, "name": "Test User"}


async def test_many_concurrent_journeys_all_succeed(signup, tenant_client):
    owner = await signup(organization_name=f"Inv {uuid.uuid4().hex[:6]}")
    gate = asyncio.Semaphore(8)

    async def journey():
        async with gate:
            email = unique_email("journey")
            token = await invite(tenant_client, owner, email)
            user = await signup(email=email)
            resp = await tenant_client.post("/v1/invitations/accept", headers=user.auth, json={"token": token})
            return resp.status, (await resp.json()).get("detail")
    for _ in range(2):
        results = await asyncio.gather(*(journey() for _ in range(24)))
        assert [r for r in results if r[0] != 200] == []


async def test_another_email_is_still_403(signup, tenant_client):
    owner = await signup(organization_name=f"Inv {uuid.uuid4().hex[:6]}")
    token = await invite(tenant_client, owner, unique_email("someone"))
    other = await signup()
    resp = await tenant_client.post("/v1/invitations/accept", headers=other.auth, json={"token": token})
    assert resp.status == 403
    assert (await resp.json())["detail"] == "This invitation was sent to another email address."


async def test_profile_unknown_and_auth_unreachable_is_503_not_403(signup, settings, auth_port, exchange, admin_db):
    """The profile cannot be known: 503 (retry), never "another email"; the invitation stays usable."""
    settings = test_settings(TenantSettings, "tenant", internal_api_token=settings.internal_api_token,
                             events_exchange=exchange, jwks_url=f"http://127.0.0.1:{auth_port}/.well-known/jwks.json",
                             relay_enabled=False, users_consumer_enabled=False, db_pool_max=2,
                             auth_url=f"http://127.0.0.1:{unused_port()}", auth_timeout_s=0.5)
    cut_off = TestClient(TestServer(create_tenant_app(settings)))
    await cut_off.start_server()
    try:
        owner = await signup(organization_name=f"Inv {uuid.uuid4().hex[:6]}")
        email = unique_email("invitee")
        token = await invite(cut_off, owner, email)
        user = await signup(email=email)
        resp = await cut_off.post("/v1/invitations/accept", headers=user.auth, json={"token": token})
        assert resp.status == 503, await resp.text()
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert await admin_db.fetchval("SELECT accepted_at FROM tenant.invitation WHERE email = $1", email) is None
    finally:
        await cut_off.close()


async def test_internal_user_route_needs_the_internal_token(client, signup, settings):
    INTERNAL_TOKEN = settings.internal_api_token.get_secret_value()
    user = await signup()
    resp = await client.get(f"/internal/users/{user.id}")
    assert resp.status == 401
    resp = await client.get(f"/internal/users/{user.id}", headers={"X-Internal-Token": "wrong"})
    assert resp.status == 401
    resp = await client.get(f"/internal/users/{user.id}", headers={"X-Internal-Token": INTERNAL_TOKEN})
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == user.id and body["email"] == user.email and body["name"] == "Test User"
    assert "password_hash" not in body
    resp = await client.get(f"/internal/users/{uuid.uuid4()}", headers={"X-Internal-Token": INTERNAL_TOKEN})
    assert resp.status == 404
    resp = await client.get("/internal/users/not-a-uuid", headers={"X-Internal-Token": INTERNAL_TOKEN})
    assert resp.status == 404


async def test_a_deleted_account_is_401_not_a_wrong_email(signup, tenant_client, admin_db):
    owner = await signup(organization_name=f"Inv {uuid.uuid4().hex[:6]}")
    email = unique_email("gone")
    token = await invite(tenant_client, owner, email)
    user = await signup(email=email)
    await admin_db.execute("DELETE FROM auth.user_account WHERE id = $1", uuid.UUID(user.id))
    resp = await tenant_client.post("/v1/invitations/accept", headers=user.auth, json={"token": token})
    assert resp.status == 401, await resp.text()
