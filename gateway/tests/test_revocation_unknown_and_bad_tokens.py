"""Issue 11: a Redis that lost its data (no ``rv:ready``) means "revocation unknown" (the
Redis-down policy), and failed token verifications count against the client address."""
import uuid

from shared import redis_keys
from shared.testing import TokenFactory


def auth(tokens, **claims):
    return {"Authorization": f"Bearer {tokens.mint(**claims)}"}


async def test_without_the_ready_key_reads_pass_and_writes_are_refused(gateway, tokens, redis_db):
    sid = uuid.uuid4()
    headers = auth(tokens, session_id=sid)
    assert (await gateway.post("/v1/tickets", headers=headers, json={})).status == 200
    await redis_db.set(redis_keys.session_revoked(sid), 1, ex=60)
    assert (await gateway.get("/v1/tickets", headers=headers)).status == 401
    await redis_db.delete(redis_keys.REVOCATION_READY)
    try:
        # Revocation unknown: the documented Redis-down policy, for every authenticated caller.
        other = auth(tokens)
        assert (await gateway.get("/v1/tickets", headers=other)).status == 200
        resp = await gateway.post("/v1/tickets", headers=other, json={})
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert (await gateway.post("/v1/tickets", headers=headers, json={})).status == 503
        # Routes without a token are unaffected.
        assert (await gateway.post("/v1/auth/login", json={})).status == 200
    finally:
        await redis_db.set(redis_keys.REVOCATION_READY, b"1")
    assert (await gateway.post("/v1/tickets", headers=headers, json={})).status == 401
    assert (await gateway.post("/v1/tickets", headers=auth(tokens), json={})).status == 200


async def test_forged_and_unknown_kid_tokens_count_against_the_address(make_gateway, tokens, redis_db):
    gateway = await make_gateway(rate_limit_bad_tokens=4)
    stranger = TokenFactory()  # its key is not in the JWKS: an unknown kid
    forged = tokens.mint().rsplit(".", 1)[0] + ".AAAA"
    bad = [auth(stranger), {"Authorization": f"Bearer {forged}"}, {"Authorization": "Bearer not.a.jwt"},
           {"Authorization": "Bearer garbage"}]
    for headers in bad:
        assert (await gateway.get("/v1/tickets", headers=headers)).status == 401
    resp = await gateway.get("/v1/tickets", headers=bad[0])
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert (await gateway.get("/v1/tickets", headers=bad[1])).status == 429
    # A valid token from the address still works; no token at all is a plain 401, not counted.
    assert (await gateway.get("/v1/tickets", headers=auth(tokens))).status == 200
    assert (await gateway.get("/v1/tickets")).status == 401
    assert int(await redis_db.get(redis_keys.rate_bad_token("127.0.0.1"))) == 6
