"""Signing keys: the JWKS, rotation with two published keys, env keys, the keys command."""
import shutil

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.app import create_app
from auth_service.keys.cli import cli
from auth_service.keys.ring import KeyConfigError, load_key_files, thumbprint_kid, write_new_key


async def test_jwks_is_public_cacheable_and_holds_no_private_part(client, keys_dir):
    resp = await client.get("/.well-known/jwks.json")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    keys = (await resp.json())["keys"]
    assert [k["kid"] for k in keys] == [k.kid for k in load_key_files(keys_dir)]
    for k in keys:
        assert k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["alg"] == "EdDSA" and k["use"] == "sig"
        assert "d" not in k


async def test_rotation_old_tokens_verify_while_the_new_key_signs(tmp_path, make_settings, settings, start_app,
                                                                  signup, bearer):
    shutil.rmtree(tmp_path)
    old = write_new_key(tmp_path)
    before = await start_app(make_settings(tenant_url=settings.tenant_url, signing_keys_dir=str(tmp_path)))
    acct = await signup(c=before)
    assert jwt.get_unverified_header(acct.access_token)["kid"] == old.kid

    new = write_new_key(tmp_path)
    assert new.kid > old.kid
    # Step 1: both published, the old one still pinned as the signer.
    pinned = await start_app(make_settings(tenant_url=settings.tenant_url, signing_keys_dir=str(tmp_path),
                                           active_kid=old.kid))
    jwks = await (await pinned.get("/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} == {old.kid, new.kid}
    assert jwt.get_unverified_header((await signup(c=pinned)).access_token)["kid"] == old.kid
    # Step 2: the newest key signs; tokens of the old key still verify.
    after = await start_app(make_settings(tenant_url=settings.tenant_url, signing_keys_dir=str(tmp_path)))
    fresh = await signup(c=after)
    assert jwt.get_unverified_header(fresh.access_token)["kid"] == new.kid
    assert (await after.get("/v1/auth/me", headers=bearer(acct.access_token))).status == 200
    assert (await after.get("/v1/auth/me", headers=bearer(fresh.access_token))).status == 200
    # Step 3: the old key removed, its tokens no longer verify.
    (tmp_path / f"{old.kid}.pem").unlink()
    retired = await start_app(make_settings(tenant_url=settings.tenant_url, signing_keys_dir=str(tmp_path)))
    assert (await retired.get("/v1/auth/me", headers=bearer(acct.access_token))).status == 401
    assert (await retired.get("/v1/auth/me", headers=bearer(fresh.access_token))).status == 200


async def test_keys_from_the_environment(tmp_path, make_settings, settings, start_app, signup):
    keys = [Ed25519PrivateKey.generate() for _ in range(2)]
    pems = "\n".join(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode() for k in keys)
    c = await start_app(make_settings(tenant_url=settings.tenant_url, signing_keys_dir=str(tmp_path / "none"),
                                      signing_keys=pems))
    jwks = await (await c.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [thumbprint_kid(k) for k in keys]
    acct = await signup(c=c)
    assert jwt.get_unverified_header(acct.access_token)["kid"] == thumbprint_kid(keys[-1])


def test_no_key_or_an_unknown_active_kid_refuses_to_start(tmp_path, make_settings):
    with pytest.raises(KeyConfigError):
        create_app(make_settings(signing_keys_dir=str(tmp_path / "empty")))
    write_new_key(tmp_path)
    with pytest.raises(KeyConfigError):
        create_app(make_settings(signing_keys_dir=str(tmp_path), active_kid="nope"))


def test_keys_command_ensure_new_list(tmp_path, make_settings, capsys):
    s = make_settings(signing_keys_dir=str(tmp_path / "k"))
    assert cli(["ensure"], s) == 0
    assert cli(["ensure"], s) == 0
    assert len(load_key_files(tmp_path / "k")) == 1
    assert cli(["new"], s) == 0
    files = load_key_files(tmp_path / "k")
    assert len(files) == 2
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in (tmp_path / "k").glob("*.pem"))
    capsys.readouterr()
    assert cli(["list"], s) == 0
    out = capsys.readouterr().out
    assert f"* {max(k.kid for k in files)}" in out
    assert cli(["bogus"], s) == 2
