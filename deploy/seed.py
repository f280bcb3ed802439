"""Seed a demo organization through the public API (idempotent: run it as often as you like).

Creates "Demo Co" with one user of each role and a few tickets. Credentials are printed at
the end; the password comes from SEED_PASSWORD (a demo value by default, never use it for
anything real).

    SEED_GATEWAY_URL=http://localhost:8080 python deploy/seed.py
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp

BASE = os.environ.get("SEED_GATEWAY_URL", f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}").rstrip("/")
PASSWORD = os.environ.get("SEED_PASSWORD", "demo-Password-2026")
ORG_NAME = os.environ.get("SEED_ORG_NAME", "Demo Co")
USERS = [("owner", "owner@demo.example", "Olivia Owner"), ("admin", "admin@demo.example", "Adam Admin"),
         ("agent", "agent@demo.example", "Ada Agent"), ("member", "member@demo.example", "Max Member")]
TICKETS = [
    ("Cannot log in from the mobile app", "The app says 'session expired' right after login.", "high",
     ["mobile", "login"]),
    ("Invoice PDF shows the wrong VAT rate", "Invoices of October use 19% instead of 20%.", "urgent", ["billing"]),
    ("Feature request: export tickets to CSV", "We would like a CSV export of all open tickets.", "low", ["export"]),
    ("Password reset email never arrives", "Tried three times; nothing in spam either.", "normal", ["email"]),
    ("Dashboard is slow in the morning", "Loading takes 10 s between 8 and 9 am.", "normal", ["performance"]),
]


class SeedError(Exception):
    pass


async def call(session, method, path, *, token=None, json=None, ok=(200, 201, 204)):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, BASE + path, json=json, headers=headers) as resp:
        body = await resp.json(content_type=None) if resp.status != 204 else None
        if resp.status not in ok:
            raise SeedError(f"{method} {path} -> {resp.status}: {body}")
        return resp.status, body


async def account(session, email, name, org_name=None):
    """Sign up, or log in when the account exists; returns (user, tokens)."""
    payload = {"email": email, "password": PASSWORD, "name": name}
    if org_name:
        payload["organization_name"] = org_name
    status, body = await call(session, "POST", "/v1/auth/signup", json=payload, ok=(201, 409))
    if status == 201:
        return body["user"], body["tokens"]
    _, body = await call(session, "POST", "/v1/auth/login", json={"email": email, "password": PASSWORD})
    return body["user"], body["tokens"]


async def scoped(session, tokens, org_id):
    _, body = await call(session, "POST", "/v1/auth/refresh",
                         json={"refresh_token": tokens["refresh_token"], "organization_id": org_id})
    return body["tokens"]


async def assign(session: aiohttp.ClientSession, ticket: dict, token: str, agent_id: str, priority: str) -> None:
    """Assign ``ticket`` to the agent. ticket-service knows who may be assigned from the
    membership events (its read model): an agent who joined a moment ago may not be there yet
    (422 assignee_not_assignable), so the seed asks again for a few seconds, as a client would."""
    deadline = time.monotonic() + 10
    while True:
        async with session.patch(f"{BASE}/v1/tickets/{ticket['id']}", json={
                "priority": priority, "assignee_id": agent_id, "status": "in_progress"},
                headers={"Authorization": f"Bearer {token}", "If-Match": f'"{ticket["version"]}"'}) as resp:
            if resp.status == 200:
                return
            text = await resp.text()
        if resp.status != 422 or "assignee_not_assignable" not in text or time.monotonic() > deadline:
            raise SeedError(f"PATCH ticket -> {resp.status}: {text}")
        await asyncio.sleep(0.2)


async def seed() -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        owner, owner_tokens = await account(session, USERS[0][1], USERS[0][2], ORG_NAME)
        _, orgs = await call(session, "GET", "/v1/organizations", token=owner_tokens["access_token"])
        org = next((o for o in orgs["items"] if o["name"] == ORG_NAME and o["role"] == "owner"), None)
        if org is None:
            raise SeedError(f"the owner has no organization named {ORG_NAME!r}")
        org_id = org["id"]
        owner_tokens = await scoped(session, owner_tokens, org_id)
        owner_at = owner_tokens["access_token"]
        _, members = await call(session, "GET", f"/v1/organizations/{org_id}/members?limit=100", token=owner_at)
        present = {m["email"] for m in members["items"]}

        tokens_by_role = {"owner": owner_tokens}
        ids_by_role = {"owner": owner["id"]}
        for role, email, name in USERS[1:]:
            user, tokens = await account(session, email, name)
            ids_by_role[role] = user["id"]
            if email not in present:
                _, inv = await call(session, "POST", f"/v1/organizations/{org_id}/invitations", token=owner_at,
                                    json={"email": email, "role": role})
                await call(session, "POST", "/v1/invitations/accept", token=tokens["access_token"],
                           json={"token": inv["token"]})
            tokens_by_role[role] = await scoped(session, tokens, org_id)

        _, existing = await call(session, "GET", "/v1/tickets?limit=1", token=owner_at)
        created = 0
        if not existing["items"]:
            member_at = tokens_by_role["member"]["access_token"]
            agent_at = tokens_by_role["agent"]["access_token"]
            for i, (title, description, priority, tags) in enumerate(TICKETS):
                _, ticket = await call(session, "POST", "/v1/tickets", token=member_at,
                                       json={"title": title, "description": description, "tags": tags})
                created += 1
                if i % 2 == 0:
                    await assign(session, ticket, agent_at, ids_by_role["agent"], priority)
                await call(session, "POST", f"/v1/tickets/{ticket['id']}/comments", token=member_at,
                           json={"body": "Any news on this?"})
        print(f"seed: organization {ORG_NAME!r} ({org_id}) ready; {created} tickets created")
        print(f"seed: users (password from SEED_PASSWORD, default {PASSWORD!r}):")
        for role, email, _ in USERS:
            print(f"seed:   {role:<6} {email}")


def main() -> int:
    try:
        asyncio.run(seed())
    except (TimeoutError, SeedError, aiohttp.ClientError) as exc:
        print(f"seed: failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
