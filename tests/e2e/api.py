"""A small client for the public API, used by the end-to-end tests, drills and benchmarks."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import aiohttp

PASSWORD = "e2e-Correct-Horse-42"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@e2e.example"


@dataclass
class User:
    id: str
    email: str
    access: str
    refresh: str
    org_id: str | None = None
    role: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.access}"}


async def expect(resp: aiohttp.ClientResponse, status: int):
    body = await resp.json(content_type=None) if resp.status != 204 else None
    assert resp.status == status, f"{resp.method} {resp.url} -> {resp.status} (wanted {status}): {body}"
    return body


async def signup(http, tag="user", org_name=None, email=None) -> User:
    email = email or unique_email(tag)
    payload = {"email": email, "password": PASSWORD, "name": tag.title()}
    if org_name:
        payload["organization_name"] = org_name
    body = await expect(await http.post("/v1/auth/signup", json=payload), 201)
    user = User(body["user"]["id"], email, body["tokens"]["access_token"], body["tokens"]["refresh_token"])
    if org_name:
        user.org_id, user.role = body["organization"]["id"], "owner"
    return user


async def scope(http, user: User, org_id: str) -> User:
    body = await expect(await http.post("/v1/auth/refresh", json={"refresh_token": user.refresh,
                                                                   "organization_id": org_id}), 200)
    user.access, user.refresh = body["tokens"]["access_token"], body["tokens"]["refresh_token"]
    user.org_id = org_id
    me = await expect(await http.get("/v1/auth/me", headers=user.auth), 200)
    user.role = me["role"]
    return user


async def join(http, owner: User, role: str, tag: str | None = None) -> User:
    """A new user invited by ``owner`` with ``role``, accepted, and scoped to the organization."""
    user = await signup(http, tag or role)
    inv = await expect(await http.post(f"/v1/organizations/{owner.org_id}/invitations", headers=owner.auth,
                                       json={"email": user.email, "role": role}), 201)
    await expect(await http.post("/v1/invitations/accept", headers=user.auth, json={"token": inv["token"]}), 200)
    return await scope(http, user, owner.org_id)
