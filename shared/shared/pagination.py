"""Opaque, tamper-checked keyset cursors and the list envelope of the contract."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from pydantic import BaseModel, Field

from .errors import InvalidCursor


class PageQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = None


class CursorCodec:
    def __init__(self, secret: str | bytes, purpose: str):
        secret = secret.encode() if isinstance(secret, str) else secret
        self.key = hmac.new(secret, f"cursor:{purpose}".encode(), hashlib.sha256).digest()

    def encode(self, payload: dict[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":"), default=str).encode()
        sig = hmac.new(self.key, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(raw + sig).decode().rstrip("=")

    def decode(self, cursor: str) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            raw, sig = blob[:-16], blob[-16:]
            if len(blob) <= 16 or not hmac.compare_digest(sig, hmac.new(self.key, raw, hashlib.sha256).digest()[:16]):
                raise ValueError
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError
            return payload
        except (ValueError, TypeError):
            raise InvalidCursor() from None


def page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
