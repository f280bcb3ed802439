"""Logins and refreshes racing a member's removal or role change (issue 11, item 2), as races:
three clients logging in and three refreshing, about fifty times each, while the owner makes
the change, repeated. Five seconds after the change answered, no token minted from the old
membership may still pass the gateway."""
import asyncio
import functools
import time
import uuid

import jwt

from tests.e2e.api import PASSWORD, User, expect, scope, signup

CLIENTS, PER_CLIENT, ROUNDS = 3, 50, 3


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def join(http, owner: User, role: str) -> User:
    user = await signup(http, role)
    inv = await expect(await http.post(f"/v1/organizations/{owner.org_id}/invitations", headers=owner.auth,
                                       json={"email": user.email, "role": role}), 201)
    # Accepting right after signup may need tenant-service to have seen the signup (issue 11,
    # item 1, done elsewhere): retried here, as this test is about what comes after.
    deadline = time.monotonic() + 15
    while True:
        resp = await http.post("/v1/invitations/accept", headers=user.auth, json={"token": inv["token"]})
        if resp.status == 200 or time.monotonic() > deadline:
            await expect(resp, 200)
            break
        await asyncio.sleep(0.3)
    return await scope(http, user, owner.org_id)


async def race(http, user: User, change) -> tuple[list[str], float]:
    """Logins and refreshes of ``user`` while ``change()`` runs (once a third of them are
    done); the access tokens minted, and when the change answered (monotonic)."""
    minted: list[str] = []
    done = 0
    answered: list[float] = []
    start_change = asyncio.Event()

    def one_done():
        nonlocal done
        done += 1
        if done >= CLIENTS * PER_CLIENT * 2 // 3:
            start_change.set()

    async def logins():
        for _ in range(PER_CLIENT):
            resp = await http.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD})
            if resp.status == 200:
                minted.append((await resp.json())["tokens"]["access_token"])
            else:
                assert resp.status in (401, 403, 429), await resp.text()
            one_done()

    # Sessions for the refreshing clients, opened first (concurrent sign-ins of one account
    # from one address count against its failed-login limit while they run).
    sessions = []
    for _ in range(CLIENTS):
        body = await expect(await http.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}), 200)
        sessions.append(body["tokens"]["refresh_token"])

    async def refreshes(refresh: str):
        for _ in range(PER_CLIENT):
            resp = await http.post("/v1/auth/refresh", json={"refresh_token": refresh})
            if resp.status == 200:
                tokens = (await resp.json())["tokens"]
                minted.append(tokens["access_token"])
                refresh = tokens["refresh_token"]
            else:
                assert resp.status in (401, 403), await resp.text()
            one_done()

    async def changer():
        await start_change.wait()
        await change()
        answered.append(time.monotonic())

    await asyncio.gather(*(logins() for _ in range(CLIENTS)), *(refreshes(r) for r in sessions), changer())
    return minted, answered[0]


async def still_working(http, tokens: list[str], after: float) -> list[int]:
    await asyncio.sleep(max(0.0, after + 5 - time.monotonic()))
    statuses = []
    for t in tokens:
        statuses.append((await http.get("/v1/tickets", headers={"Authorization": f"Bearer {t}"})).status)
    return [s for s in statuses if s != 401]


async def remove_member(http, owner: User, member: User) -> None:
    await expect(await http.delete(f"/v1/organizations/{owner.org_id}/members/{member.id}",
                                   headers=owner.auth), 204)


async def change_role(http, owner: User, member: User, role: str) -> None:
    await expect(await http.patch(f"/v1/organizations/{owner.org_id}/members/{member.id}",
                                  headers=owner.auth, json={"role": role}), 200)


async def test_logins_and_refreshes_racing_a_removal_leave_no_working_token(http):
    owner = await signup(http, "race-owner", org_name=f"Race {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    for round_ in range(ROUNDS):
        agent = await join(http, owner, "agent")
        minted, answered = await race(http, agent, functools.partial(remove_member, http, owner, agent))
        scoped = [t for t in minted if claims(t).get("tid") == owner.org_id]
        assert scoped, "no token minted for the organization: the race did not happen"
        working = await still_working(http, scoped, answered)
        assert not working, (f"round {round_}: {len(working)} of {len(scoped)} tokens of the removed member "
                             f"still pass 5 s after the removal: {working}")


async def test_logins_and_refreshes_racing_a_role_change_leave_no_old_role_token(http):
    owner = await signup(http, "race-owner", org_name=f"Race {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    agent = await join(http, owner, "agent")
    roles = ["agent", "member"]
    for round_ in range(ROUNDS):
        old, new = roles[round_ % 2], roles[(round_ + 1) % 2]
        minted, answered = await race(http, agent, functools.partial(change_role, http, owner, agent, new))
        old_role = [t for t in minted if claims(t).get("tid") == owner.org_id and claims(t).get("role") == old]
        assert old_role, "no token minted with the old role: the race did not happen"
        working = await still_working(http, old_role, answered)
        assert not working, (f"round {round_}: {len(working)} of {len(old_role)} tokens with the old role "
                             f"still pass 5 s after the change: {working}")
