"""POST /v1/auth/signup: validation, email uniqueness, and the organization all or nothing."""
import uuid

import pytest


async def test_signup_returns_user_and_tokens_and_records_event(client, signup, events, bearer):
    acct = await signup()
    assert acct.body["user"]["email"] == acct.email
    assert acct.body["organization"] is None
    tokens = acct.body["tokens"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    me = await client.get("/v1/auth/me", headers=bearer(acct.access_token))
    assert me.status == 200
    assert await me.json() == {"id": acct.id, "email": acct.email, "name": "Test User",
                               "organization_id": None, "role": None}
    [ev] = await events("user.registered", acct.id)
    assert ev["data"] == {"user_id": acct.id, "email": acct.email, "name": "Test User"}
    assert ev["source"] == "auth-service" and ev["tenant_id"] is None
