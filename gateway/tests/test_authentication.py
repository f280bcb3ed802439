"""Tokens at the gateway: only a genuine, current access token passes; every forgery is a 401
problem before anything reaches an upstream."""
import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.testing import TokenFactory


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(tokens, **over):
    now = int(time.time())
    claims = {"iss": tokens.issuer, "aud": tokens.audience, "sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()),
              "iat": now, "iat_ms": now * 1000, "exp": now + 900, "jti": uuid.uuid4().hex}
    claims.update(over)
    return claims


def forged_tokens(tokens: TokenFactory) -> dict[str, str]:
    genuine = tokens.mint()
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "owner"
    claims["sub"] = str(uuid.uuid4())
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"

    none_token = (_b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": tokens.kid}).encode()) + "."
                  + _b64(json.dumps(_claims(tokens)).encode()) + ".")
    public_pem = tokens.private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    # HS256 keyed with the public key (algorithm confusion); pyjwt refuses to do this, so by hand.
    import hashlib
    import hmac
    signing_input = (_b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": tokens.kid}).encode()) + "."
                     + _b64(json.dumps(_claims(tokens)).encode()))
    hs256 = signing_input + "." + _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())

    other_key = Ed25519PrivateKey.generate()
    unknown_kid = jwt.encode(_claims(tokens), other_key, algorithm="EdDSA", headers={"kid": "nobody", "typ": "at+jwt"})
    same_kid_other_key = jwt.encode(_claims(tokens), other_key, algorithm="EdDSA",
                                    headers={"kid": tokens.kid, "typ": "at+jwt"})
    past = int(time.time()) - 3600
    return {
        "alg_none": none_token,
        "hs256_with_public_key": hs256,
        "tampered_claims": tampered,
        "unknown_kid": unknown_kid,
        "known_kid_wrong_key": same_kid_other_key,
        "expired": tokens.mint(iat=past, ttl_s=900),
        "wrong_audience": tokens.mint(aud="someone-else"),
        "wrong_issuer": tokens.mint(iss="evil-issuer"),
        "not_yet_valid": tokens.mint(nbf=int(time.time()) + 3600),
        "wrong_typ": jwt.encode(_claims(tokens), tokens.private_key, algorithm="EdDSA",
                                headers={"kid": tokens.kid, "typ": "JWT"}),
        "refresh_token_like": "rt_" + base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode().rstrip("="),
        "garbage_three_parts": "a.b.c",
        "missing_sub": jwt.encode({k: v for k, v in _claims(tokens).items() if k != "sub"}, tokens.private_key,
                                  algorithm="EdDSA", headers={"kid": tokens.kid, "typ": "at+jwt"}),
    }


async def test_genuine_token_passes(gateway, tokens):
    resp = await gateway.get("/v1/tickets", headers={"Authorization": f"Bearer {tokens.mint()}"})
    assert resp.status == 200


@pytest.mark.parametrize("name", [
    "alg_none", "hs256_with_public_key", "tampered_claims", "unknown_kid", "known_kid_wrong_key", "expired",
    "wrong_audience", "wrong_issuer", "not_yet_valid", "wrong_typ", "refresh_token_like", "garbage_three_parts",
    "missing_sub"])
async def test_forged_tokens_are_refused(gateway, tokens, name):
    token = forged_tokens(tokens)[name]
    resp = await gateway.get("/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401, name
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    body = await resp.json()
    assert body["status"] == 401 and body["request_id"] == resp.headers["X-Request-ID"]
    assert "upstream" not in body


@pytest.mark.parametrize("value", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi"])
async def test_missing_or_malformed_authorization_is_401(gateway, value):
    headers = {} if value is None else {"Authorization": value}
    resp = await gateway.get("/v1/organizations", headers=headers)
    assert resp.status == 401
    assert (await resp.json())["title"] == "Unauthorized"


async def test_every_non_public_route_needs_a_token(gateway):
    for method, path in [("POST", "/v1/auth/logout"), ("GET", "/v1/auth/me"), ("POST", "/v1/invitations/accept"),
                         ("GET", "/v1/tickets/1"), ("PATCH", "/v1/organizations/x"), ("GET", "/v1/auth/login")]:
        resp = await gateway.request(method, path)
        assert resp.status == 401, (method, path)


async def test_verified_tokens_are_cached_until_expiry(gateway, tokens):
    from gateway.app import GATEWAY
    cache = gateway.app[GATEWAY].tokens
    token = tokens.mint()
    before = len(cache)
    for _ in range(3):
        assert (await gateway.get("/v1/tickets", headers={"Authorization": f"Bearer {token}"})).status == 200
    assert len(cache) == before + 1
    # A token expiring within the leeway is accepted but never cached beyond its expiry.
    soon = tokens.mint(iat=int(time.time()) - 905, ttl_s=900)
    assert (await gateway.get("/v1/tickets", headers={"Authorization": f"Bearer {soon}"})).status == 200
    assert len(cache) == before + 1


async def test_token_cache_is_bounded(make_gateway, tokens):
    from gateway.app import GATEWAY
    gw = await make_gateway(token_cache_size=3)
    for _ in range(6):
        resp = await gw.get("/v1/tickets", headers={"Authorization": f"Bearer {tokens.mint()}"})
        assert resp.status == 200
    assert len(gw.app[GATEWAY].tokens) == 3


async def test_rotated_key_is_fetched_on_unknown_kid(make_gateway, tokens):
    """A key published after start-up (rotation) is picked up by refetching the JWKS."""
    gw = await make_gateway(jwks_min_refetch_s=0.0)
    old_kid, old_key = tokens.kid, tokens.private_key
    try:
        tokens.kid, tokens.private_key = f"rotated-{uuid.uuid4().hex[:6]}", Ed25519PrivateKey.generate()
        resp = await gw.get("/v1/tickets", headers={"Authorization": f"Bearer {tokens.mint()}"})
        assert resp.status == 200
    finally:
        tokens.kid, tokens.private_key = old_kid, old_key


async def test_gateway_started_before_auth_accepts_tokens_once_jwks_is_up(make_gateway, tokens):
    """Start-up order must not matter: a failed warm-up fetch does not block the first refetch."""
    import socket

    from aiohttp import web
    from aiohttp.test_utils import TestServer
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    gw = await make_gateway(jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json")
    headers = {"Authorization": f"Bearer {tokens.mint()}"}
    assert (await gw.get("/v1/tickets", headers=headers)).status == 503   # no keys at all yet: 503, not 401
    app = web.Application()

    async def jwks(request):
        return web.json_response(tokens.jwks())
    app.router.add_get("/.well-known/jwks.json", jwks)
    server = TestServer(app, port=port)
    await server.start_server()
    try:
        from gateway.app import GATEWAY
        gw.app[GATEWAY].tokens.verifier.keys._last_fetch = 0.0   # skip the 5 s refetch spacing
        assert (await gw.get("/v1/tickets", headers=headers)).status == 200
    finally:
        await server.close()
