"""Organization slugs: lowercase ``[a-z0-9-]``, 1..63 characters, no hyphen at either end."""
from __future__ import annotations

import re
import secrets
import unicodedata

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_SLUG = re.compile(SLUG_PATTERN)
_BASE_MAX = 50  # leaves room for a "-<suffix>" when the derived slug is taken


def is_valid(slug: str) -> bool:
    return bool(_SLUG.match(slug))


def derive(name: str) -> str:
    """``"Acme Café, Inc."`` -> ``"acme-cafe-inc"``; a name with no usable letter gives ``"org"``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:_BASE_MAX].strip("-")
    return slug or "org"


def candidates(base: str):
    """``base``, then ``base-2`` .. ``base-9``, then random suffixes (a busy base cannot loop forever)."""
    yield base
    for n in range(2, 10):
        yield f"{base}-{n}"
    for _ in range(5):
        yield f"{base}-{secrets.token_hex(3)}"
