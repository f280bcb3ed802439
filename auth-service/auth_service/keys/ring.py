"""Ed25519 signing keys: loading, choosing the signer, publishing the public half.

Keys come from PEM files named ``<kid>.pem`` in ``AUTH_SIGNING_KEYS_DIR`` and/or from PEM
blocks in ``AUTH_SIGNING_KEYS``. Every configured key verifies and is published in the JWKS;
one signs: ``AUTH_ACTIVE_KID``, or else the newest (the highest kid of the directory — kids
made by ``keys new`` start with a UTC timestamp — then the last PEM of the environment).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth import ACCESS_TOKEN_TYP

from ..config import Settings

_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.S)
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyConfigError(Exception):
    pass


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)
    source: str = ""

    def public_jwk(self) -> dict[str, Any]:
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "kid": self.kid, "alg": "EdDSA", "use": "sig"}


def thumbprint_kid(private_key: Ed25519PrivateKey) -> str:
    """RFC 7638 thumbprint of the public key: a stable kid for keys given without a name."""
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}, separators=(",", ":"),
                           sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())[:22]


def _load_pem(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigError(f"{where}: not an unencrypted PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigError(f"{where}: only Ed25519 keys are supported")
    return key


def load_key_files(directory: Path) -> list[SigningKey]:
    if not directory.is_dir():
        return []
    keys = []
    for path in sorted(directory.glob("*.pem")):
        kid = path.stem
        if not _KID.match(kid):
            raise KeyConfigError(f"{path}: the file name (the kid) may use only A-Z a-z 0-9 . _ -")
        keys.append(SigningKey(kid, _load_pem(path.read_bytes(), str(path)), source=str(path)))
    return keys


def load_env_keys(pems: str) -> list[SigningKey]:
    keys = []
    for i, block in enumerate(_PEM_BLOCK.findall(pems or "")):
        key = _load_pem(block.encode(), f"AUTH_SIGNING_KEYS[{i}]")
        keys.append(SigningKey(thumbprint_kid(key), key, source="environment"))
    return keys


class KeyRing:
    def __init__(self, keys: list[SigningKey], active_kid: str = ""):
        if not keys:
            raise KeyConfigError("no signing key configured: run 'python -m auth_service keys ensure' "
                                 "or set AUTH_SIGNING_KEYS")
        by_kid: dict[str, SigningKey] = {}
        for key in keys:
            if key.kid in by_kid:
                raise KeyConfigError(f"two signing keys share the kid {key.kid!r}")
            by_kid[key.kid] = key
        self.keys = by_kid
        if active_kid:
            if active_kid not in by_kid:
                raise KeyConfigError(f"AUTH_ACTIVE_KID={active_kid!r} is not among the configured keys")
            self.active = by_kid[active_kid]
        else:
            self.active = keys[-1]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys.values()]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.active.private_key, algorithm="EdDSA",
                          headers={"kid": self.active.kid, "typ": ACCESS_TOKEN_TYP})


def keys_dir(settings: Settings) -> Path:
    return Path(settings.signing_keys_dir).expanduser()


def load_keyring(settings: Settings) -> KeyRing:
    file_keys = load_key_files(keys_dir(settings))
    file_keys.sort(key=lambda k: k.kid)
    return KeyRing(file_keys + load_env_keys(settings.signing_keys.get_secret_value()), settings.active_kid)


def new_kid() -> str:
    """``k<UTC time to the microsecond>-<random>``: later keys sort after earlier ones."""
    now = time.time()
    return f"k{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now % 1 * 1e6):06d}Z-{secrets.token_hex(3)}"


def write_new_key(directory: Path) -> SigningKey:
    """Generate an Ed25519 key and write it as ``<kid>.pem`` (directory 0700, file 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    key = Ed25519PrivateKey.generate()
    kid = new_kid()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = directory / f"{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return SigningKey(kid, key, source=str(path))


KEYRING = web.AppKey("keyring", KeyRing)
KEYRING_JWKS = web.AppKey("keyring_jwks", dict)
