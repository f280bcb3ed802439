"""A password change racing sign-ins with the old password (issue 11, item 3), as a race: many
concurrent logins, repeated. No session opened with the old password survives the change, and
the re-hash a login does never replaces the new hash."""
import asyncio

import jwt
from argon2 import PasswordHasher as Argon2

NEW_PASSWORD = "a brand new passphrase"


def sid_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sid"]


async def test_password_change_racing_logins_leaves_no_old_session_and_the_new_hash(
        make_settings, settings, start_app, signup, bearer, admin_db, redis):
    # Two apps with different argon2 parameters: each finds the other's hashes outdated, so
    # every login re-hashes the password it verified (the compare-and-set under test). The
    # logins that fail once the password changed are not what this test is about: no lockout.
    limits = dict(login_max_failures_per_account_address=100_000, login_max_failures_per_account=100_000)
    client = await start_app(make_settings(tenant_url=settings.tenant_url, **limits))
    other = await start_app(make_settings(tenant_url=settings.tenant_url, argon2_time_cost=2, **limits))

    # Each round's account and result lists are passed in, not captured from the loop.
    async def login_loop(acct, i: int, statuses: list[int], opened: list[dict]) -> None:
        for n in range(20):
            resp = await (client, other)[(i + n) % 2].post(
                "/v1/auth/login", json={"email": acct.email, "password": acct.password})
            statuses.append(resp.status)
            if resp.status == 200:
                opened.append((await resp.json())["tokens"])
            else:
                assert resp.status == 401, await resp.text()

    async def change(acct, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        resp = await client.post("/v1/auth/password", headers=bearer(acct.access_token),
                                 json={"current_password": acct.password, "new_password": NEW_PASSWORD})
        assert resp.status == 204, await resp.text()

    for round_ in range(6):
        acct = await signup(c=client)
        opened: list[dict] = []
        statuses: list[int] = []
        await asyncio.gather(*(login_loop(acct, i, statuses, opened) for i in range(3)),
                             change(acct, 0.05 + 0.03 * round_))
        assert statuses.count(200) > 0, "no login before the change: the race did not happen"

        # The new password is the stored one (no re-hash of the old password replaced it).
        stored = await admin_db.fetchval("SELECT password_hash FROM auth.user_account WHERE id = $1::uuid", acct.id)
        assert Argon2().verify(stored, NEW_PASSWORD)
        # Every session opened with the old password is over, in the database and in Redis.
        sids = [sid_of(t["access_token"]) for t in opened]
        alive = await admin_db.fetch(
            "SELECT id FROM auth.session WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL", sids)
        assert alive == [], f"round {round_}: {len(alive)} sessions opened with the old password survived"
        for t in opened:
            assert await redis.get(f"rv:sid:{sid_of(t['access_token'])}") == b"1"
            assert (await client.post("/v1/auth/refresh", json={"refresh_token": t["refresh_token"]})).status == 401
        # The changer's own session goes on, and only the new password signs in.
        assert (await client.get("/v1/auth/me", headers=bearer(acct.access_token))).status == 200
        assert (await other.post("/v1/auth/login", json={"email": acct.email, "password": NEW_PASSWORD})).status == 200
        resp = await client.post("/v1/auth/login", json={"email": acct.email, "password": acct.password})
        assert resp.status == 401
