"""Open the invitation link, sign up, accept: accepting must not wait for `user.registered` to
reach tenant-service (README "What you can rely on"). 24 journeys, 8 at a time, repeated; every
one must succeed, through the gateway and the real services."""
import asyncio
import uuid

from tests.e2e.api import PASSWORD, expect, scope, signup, unique_email

JOURNEYS, AT_ONCE, ROUNDS = 24, 8, 3


async def journey(http, owner, gate: asyncio.Semaphore, role: str) -> str | None:
    async with gate:
        email = unique_email("invitee")
        inv = await expect(await http.post(f"/v1/organizations/{owner.org_id}/invitations", headers=owner.auth,
                                           json={"email": email, "role": role}), 201)
        body = await expect(await http.post("/v1/auth/signup", json={
            "email": email.upper(), "password": PASSWORD, "name": "Invitee"}), 201)
        auth = {"Authorization": f"Bearer {body['tokens']['access_token']}"}
        resp = await http.post("/v1/invitations/accept", headers=auth, json={"token": inv["token"]})
        answer = await resp.json(content_type=None)
        if resp.status != 200:
            return f"{resp.status}: {answer.get('detail')}"
        assert answer["organization_id"] == owner.org_id and answer["role"] == role, answer
        return None


async def test_invite_signup_accept_never_depends_on_the_event(http):
    owner = await signup(http, "inviter", org_name=f"Journeys {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    for round_ in range(ROUNDS):
        gate = asyncio.Semaphore(AT_ONCE)
        results = await asyncio.gather(*(journey(http, owner, gate, ("agent", "member")[i % 2])
                                         for i in range(JOURNEYS)))
        failed = [r for r in results if r]
        assert not failed, f"round {round_}: {len(failed)}/{JOURNEYS} journeys failed: {failed}"
    members = await expect(await http.get(f"/v1/organizations/{owner.org_id}/members?limit=100",
                                          headers=owner.auth), 200)
    assert len(members["items"]) == 1 + JOURNEYS * ROUNDS
