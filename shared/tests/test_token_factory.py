"""The shared verifier against tokens minted like auth-service's, over a real JWKS endpoint."""
import aiohttp
import pytest

from shared.auth import JWKSCache, TokenVerifier
from shared.errors import Unauthorized
from shared.permissions import BUILTIN_ROLES
from shared.testing import TokenFactory


async def test_verifier_accepts_minted_token_and_rejects_other_audience():
    tf = TokenFactory()
    url = await tf.serve_jwks()
    try:
        async with aiohttp.ClientSession() as session:
            v = TokenVerifier(JWKSCache(url, session), issuer="saas-auth", audience="saas-api")
            p = await v.verify(tf.mint(role="agent", tenant_id="7b0c1c9e-1111-4c3b-9a51-5d7b8c6f0a01"))
            assert p.role == "agent" and p.permissions == BUILTIN_ROLES["agent"]
            assert p.has_permission("tickets:triage") and not p.has_permission("tickets:delete")
            custom = await v.verify(tf.mint(role="Triage", tenant_id="7b0c1c9e-1111-4c3b-9a51-5d7b8c6f0a01",
                                            perms=["tickets:read_all", "tickets:triage", 7]))
            assert custom.permissions == {"tickets:read_all", "tickets:triage"}
            # an unknown role without perms has none; perms without an organization mean nothing
            assert (await v.verify(tf.mint(role="Ghost", tenant_id="7b0c1c9e-1111-4c3b-9a51-5d7b8c6f0a01"))
                    ).permissions == frozenset()
            assert (await v.verify(tf.mint(perms=["tickets:read_all"]))).permissions == frozenset()
            with pytest.raises(Unauthorized):
                await v.verify(tf.mint(aud="someone-else"))
    finally:
        await tf.close()
