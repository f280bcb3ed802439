"""``python -m auth_service keys ensure | new | list``: the signing keys on disk.

Rotation, without a token ever failing verification:
  1. ``keys new`` on the key directory every replica reads, with ``AUTH_ACTIVE_KID`` pinned to
     the current key; restart the replicas: the JWKS now publishes both keys, the old one signs.
  2. Wait longer than the longest JWKS cache of any verifier (``AUTH_JWKS_MAX_AGE_S``,
     default 300 s; the gateway also refetches on an unknown kid).
  3. Point ``AUTH_ACTIVE_KID`` at the new kid (or unset it: the newest key signs); restart.
  4. After the access-token lifetime plus leeway (15 min + 10 s by default), delete the old
     ``<kid>.pem`` and restart: no unexpired token signed by it remains.
"""
from __future__ import annotations

import sys

from ..config import Settings
from .ring import KeyConfigError, keys_dir, load_env_keys, load_key_files, load_keyring, write_new_key

USAGE = "usage: python -m auth_service keys ensure | new | list"


def cli(argv: list[str], settings: Settings | None = None) -> int:
    settings = settings or Settings()
    directory = keys_dir(settings)
    cmd = argv[0] if argv else ""
    try:
        if cmd == "ensure":
            existing = load_key_files(directory) + load_env_keys(settings.signing_keys.get_secret_value())
            if existing:
                print(f"signing keys present ({len(existing)}); nothing to do")
                return 0
            key = write_new_key(directory)
            print(f"created signing key {key.kid} in {directory}")
            return 0
        if cmd == "new":
            key = write_new_key(directory)
            print(f"created signing key {key.kid} in {directory}")
            print("it is published once the replicas restart; pin AUTH_ACTIVE_KID to the current key "
                  "until every verifier has fetched the new JWKS (see the rotation procedure)")
            return 0
        if cmd == "list":
            ring = load_keyring(settings)
            for kid, key in ring.keys.items():
                marker = "*" if kid == ring.active.kid else " "
                print(f"{marker} {kid}  ({key.source})")
            return 0
    except KeyConfigError as exc:
        print(f"keys: {exc}", file=sys.stderr)
        return 1
    print(USAGE, file=sys.stderr)
    return 2
