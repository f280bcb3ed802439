"""Races the row lock on the organization serialises: two owners demoting each other, one
invitation accepted twice at once, one signup retried concurrently."""
import asyncio
import uuid


async def test_two_owners_demoting_each_other_keep_one_owner(client, world, admin_db):
    org = await world.org(roles=("owner",))
    second = await world.add_member(org, "owner")
    first = org["owner"]
    results = await asyncio.gather(
        client.patch(f"/v1/organizations/{org.id}/members/{second.user_id}", json={"role": "admin"},
                     headers=first.auth),
        client.patch(f"/v1/organizations/{org.id}/members/{first.user_id}", json={"role": "admin"},
                     headers=second.auth))
    assert sorted(r.status for r in results) in ([200, 403], [200, 409])
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.membership WHERE organization_id = $1 "
                                   "AND role = 'owner'", org.id) == 1


async def test_two_owners_leaving_at_once_keep_one_owner(client, world, admin_db):
    org = await world.org(roles=("owner",))
    second = await world.add_member(org, "owner")
    first = org["owner"]
    results = await asyncio.gather(
        client.delete(f"/v1/organizations/{org.id}/members/{first.user_id}", headers=first.auth),
        client.delete(f"/v1/organizations/{org.id}/members/{second.user_id}", headers=second.auth))
    assert sorted(r.status for r in results) == [204, 409]
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.membership WHERE organization_id = $1 "
                                   "AND role = 'owner'", org.id) == 1


async def test_one_invitation_accepted_twice_at_once(client, world, admin_db):
    org = await world.org()
    uid, email = await world.user()
    resp = await client.post(f"/v1/organizations/{org.id}/invitations", json={"email": email, "role": "member"},
                             headers=org["admin"].auth)
    token = (await resp.json())["token"]
    auth = {"Authorization": f"Bearer {world.token(uid)}"}
    results = await asyncio.gather(*(client.post("/v1/invitations/accept", json={"token": token}, headers=auth)
                                     for _ in range(3)))
    assert sorted(r.status for r in results) == [200, 409, 409]
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.membership WHERE organization_id = $1 "
                                   "AND user_id = $2", org.id, uid) == 1


async def test_concurrent_signup_retries_create_one_organization(client, internal_headers, admin_db):
    uid = uuid.uuid4()
    body = {"name": f"Race {uid.hex[:6]}", "owner_user_id": str(uid), "owner_email": f"r-{uid.hex[:8]}@example.com",
            "owner_name": "Racer"}
    results = await asyncio.gather(*(client.post("/internal/organizations", json=body, headers=internal_headers())
                                     for _ in range(3)))
    assert [r.status for r in results] == [201] * 3
    assert len({(await r.json())["id"] for r in results}) == 1
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.organization WHERE signup_user_id = $1", uid) == 1
