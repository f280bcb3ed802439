"""The shared verifier against tokens minted like auth-service's, over a real JWKS endpoint."""
import aiohttp
import pytest

from shared.auth import JWKSCache, TokenVerifier
from shared.errors import Unauthorized
from shared.testing import TokenFactory


async def test_verifier_accepts_minted_token_and_rejects_other_audience():
    tf = TokenFactory()
    url = await tf.serve_jwks()
    try:
        async with aiohttp.ClientSession() as session:
            v = TokenVerifier(JWKSCache(url, session), issuer="saas-auth", audience="saas-api")
            p = await v.verify(tf.mint(role="agent", tenant_id="7b0c1c9e-1111-4c3b-9a51-5d7b8c6f0a01"))
            assert p.role == "agent" and p.has_role("member") and not p.has_role("admin")
            with pytest.raises(Unauthorized):
                await v.verify(tf.mint(aud="someone-else"))
    finally:
        await tf.close()
