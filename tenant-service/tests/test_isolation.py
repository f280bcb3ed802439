"""Every tenant route answers 404, never 403, for an organization the token is not scoped to,
and 401 without a token."""
import uuid

import pytest

ROUTES = [
    ("GET", "", None), ("PATCH", "", {"name": "x"}), ("DELETE", "", None),
    ("GET", "/members", None), ("PATCH", "/members/{user}", {"role": "agent"}), ("DELETE", "/members/{user}", None),
    ("POST", "/invitations", {"email": "someone@example.com", "role": "member"}), ("GET", "/invitations", None),
    ("DELETE", "/invitations/{invitation}", None), ("GET", "/audit-events", None),
]


@pytest.fixture(scope="module")
async def two_orgs(world, client):
    mine, theirs = await world.org(), await world.org()
    resp = await client.post(f"/v1/organizations/{theirs.id}/invitations", headers=theirs["owner"].auth,
                             json={"email": f"x-{uuid.uuid4().hex[:6]}@example.com", "role": "member"})
    theirs.invitation = (await resp.json())["id"]
    return mine, theirs


def fill(suffix, org):
    return suffix.format(user=org["member"].user_id, invitation=getattr(org, "invitation", uuid.uuid4()))


@pytest.mark.parametrize("method,suffix,body", ROUTES, ids=[f"{m} {s or '/'}" for m, s, _ in ROUTES])
async def test_another_organization_is_404_even_for_an_owner(client, problem, two_orgs, method, suffix, body):
    mine, theirs = two_orgs
    kw = {"json": body} if body is not None else {}
    resp = await client.request(method, f"/v1/organizations/{theirs.id}{fill(suffix, theirs)}",
                                headers=mine["owner"].auth, **kw)
    await problem(resp, 404)


@pytest.mark.parametrize("method,suffix,body", ROUTES, ids=[f"{m} {s or '/'}" for m, s, _ in ROUTES])
async def test_unscoped_token_and_bad_ids_are_404(client, world, problem, two_orgs, method, suffix, body):
    _, theirs = two_orgs
    kw = {"json": body} if body is not None else {}
    unscoped = {"Authorization": f"Bearer {world.token(theirs['owner'].user_id)}"}
    await problem(await client.request(method, f"/v1/organizations/{theirs.id}{fill(suffix, theirs)}",
                                       headers=unscoped, **kw), 404)
    await problem(await client.request(method, f"/v1/organizations/not-a-uuid{fill(suffix, theirs)}",
                                       headers=theirs["owner"].auth, **kw), 404)


@pytest.mark.parametrize("method,suffix,body", ROUTES + [("POST", "!/v1/organizations", {"name": "x"}),
                                                         ("GET", "!/v1/organizations", None),
                                                         ("POST", "!/v1/invitations/accept", {"token": "x"})])
async def test_no_or_bad_token_is_401(client, problem, two_orgs, token_factory, method, suffix, body):
    _, theirs = two_orgs
    path = suffix[1:] if suffix.startswith("!") else f"/v1/organizations/{theirs.id}{fill(suffix, theirs)}"
    kw = {"json": body} if body is not None else {}
    await problem(await client.request(method, path, **kw), 401)
    expired = token_factory.mint(user_id=theirs["owner"].user_id, tenant_id=theirs.id, role="owner", iat=1, ttl_s=60)
    await problem(await client.request(method, path, headers={"Authorization": f"Bearer {expired}"}, **kw), 401)


async def test_foreign_invitation_id_in_own_organization_is_404(client, problem, two_orgs):
    mine, theirs = two_orgs
    await problem(await client.delete(f"/v1/organizations/{mine.id}/invitations/{theirs.invitation}",
                                      headers=mine["owner"].auth), 404)
