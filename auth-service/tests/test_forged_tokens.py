"""Forged and unacceptable access tokens against auth-service's own protected routes."""
import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.keys.ring import load_key_files


def b64(obj) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode() if not isinstance(obj, bytes) else obj
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
async def victim(signup):
    return await signup()


@pytest.fixture
def real_key(keys_dir):
    return load_key_files(keys_dir)[-1]


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def me(client, token: str) -> int:
    return (await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})).status


async def test_the_genuine_token_works(client, victim):
    assert await me(client, victim.access_token) == 200


async def test_alg_none_is_refused(client, victim):
    header = jwt.get_unverified_header(victim.access_token)
    forged = f"{b64({**header, 'alg': 'none'})}.{b64(claims_of(victim.access_token))}."
    assert await me(client, forged) == 401


async def test_hs256_signed_with_the_public_key_is_refused(client, victim, real_key):
    import hashlib
    import hmac
    public_pem = real_key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    public_raw = real_key.private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                                serialization.PublicFormat.Raw)
    header = {"alg": "HS256", "kid": real_key.kid, "typ": "at+jwt"}
    claims = claims_of(victim.access_token)
    for secret in (public_pem, public_raw, real_key.public_jwk()["x"].encode()):
        signing_input = f"{b64(header)}.{b64(claims)}"
        sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert await me(client, f"{signing_input}.{b64(sig)}") == 401


async def test_tampered_claims_are_refused(client, victim, signup):
    other = await signup()
    head, payload, sig = victim.access_token.split(".")
    claims = claims_of(victim.access_token)
    for change in ({"sub": other.id}, {"role": "owner", "tid": str(uuid.uuid4())}, {"exp": claims["exp"] + 3600}):
        forged = f"{head}.{b64({**claims, **change})}.{sig}"
        assert await me(client, forged) == 401


async def test_unknown_kid_and_foreign_key_are_refused(client, victim):
    foreign = Ed25519PrivateKey.generate()
    claims = claims_of(victim.access_token)
    for kid in ("no-such-kid", jwt.get_unverified_header(victim.access_token)["kid"]):
        token = jwt.encode(claims, foreign, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
        assert await me(client, token) == 401


async def test_expired_wrong_audience_wrong_issuer_and_wrong_type_are_refused(client, victim, real_key):
    claims = claims_of(victim.access_token)
    now = int(time.time())

    def sign(c, **header):
        return jwt.encode(c, real_key.private_key, algorithm="EdDSA",
                          headers={"kid": real_key.kid, "typ": "at+jwt", **header})
    assert await me(client, sign(claims)) == 200  # the control: our key, the genuine claims
    assert await me(client, sign({**claims, "iat": now - 3600, "exp": now - 60})) == 401
    assert await me(client, sign({**claims, "aud": "someone-else"})) == 401
    assert await me(client, sign({**claims, "iss": "evil-issuer"})) == 401
    assert await me(client, sign(claims, typ="JWT")) == 401
    assert await me(client, sign({k: v for k, v in claims.items() if k != "sid"})) == 401
    assert await me(client, "not.a.jwt") == 401
