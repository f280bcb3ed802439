"""Access tokens carry the permissions of their membership's role (``perms``), as
tenant-service resolves them (built-in or custom role), on login and on refresh."""
import uuid

import jwt

from shared.permissions import BUILTIN_ROLES, TICKETS_READ_ALL, TICKETS_TRIAGE


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def test_login_and_refresh_put_the_role_permissions_in_the_token(client, signup, tenant_client, bearer,
                                                                       admin_db):
    owner = await signup(organization_name=f"Perms {uuid.uuid4().hex[:6]}")
    login = await client.post("/v1/auth/login", json={"email": owner.email, "password": owner.password})
    c = claims((await login.json())["tokens"]["access_token"])
    assert c["role"] == "owner" and c["perms"] == sorted(BUILTIN_ROLES["owner"])

    role = await tenant_client.post(f"/v1/organizations/{owner.organization_id}/roles",
                                    json={"name": "Triage", "permissions": [TICKETS_READ_ALL, TICKETS_TRIAGE]},
                                    headers=bearer(owner.access_token))
    assert role.status == 201, await role.text()
    holder = await signup()
    # The membership is written directly: invitations need the profile the users consumer keeps.
    await admin_db.execute("INSERT INTO tenant.membership (organization_id, user_id, role) VALUES ($1, $2, 'Triage')",
                           uuid.UUID(owner.organization_id), uuid.UUID(holder.id))
    resp = await client.post("/v1/auth/login", json={"email": holder.email, "password": holder.password,
                                                     "organization_id": owner.organization_id})
    body = await resp.json()
    assert resp.status == 200, body
    c = claims(body["tokens"]["access_token"])
    assert c["role"] == "Triage" and c["perms"] == [TICKETS_READ_ALL, TICKETS_TRIAGE]

    narrowed = await tenant_client.patch(f"/v1/organizations/{owner.organization_id}/roles/{(await role.json())['id']}",
                                         json={"permissions": [TICKETS_READ_ALL]}, headers=bearer(owner.access_token))
    assert narrowed.status == 200, await narrowed.text()
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": body["tokens"]["refresh_token"]})
    assert resp.status == 200
    assert claims((await resp.json())["tokens"]["access_token"])["perms"] == [TICKETS_READ_ALL]


async def test_a_token_without_an_organization_has_no_perms(client, signup):
    acct = await signup()
    assert "perms" not in claims(acct.access_token)
