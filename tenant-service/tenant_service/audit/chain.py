"""The hash chain of an organization's audit events, defined once.

Every chained event stores its position ``chain_seq`` (1, 2, ... per organization), the hash of
the event before it (``prev_hash``; the retention checkpoint's hash, or '' for the very first)
and its own hash:

    hash = sha256_hex(prev_hash + "\\n" + str(chain_seq) + "\\n" + envelope)

where ``envelope`` is the stored event as PostgreSQL renders its jsonb (``envelope::text``, the
exact line the export writes). PostgreSQL computes it on append and on verification
(``hash_sql``); ``chain_hash`` is the same formula in Python for anyone re-checking an export.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from uuid import UUID

GENESIS = ""


def hash_sql(prev: str, seq: str, envelope: str) -> str:
    """The chain hash as a SQL expression over three SQL expressions (text, bigint, jsonb)."""
    return (f"encode(sha256(convert_to({prev} || E'\\n' || ({seq})::text || E'\\n' || ({envelope})::text, "
            f"'UTF8')), 'hex')")


def chain_hash(prev_hash: str, seq: int, envelope_text: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{envelope_text}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainHead:
    last_seq: int
    last_hash: str
    last_event_id: UUID | None
    checkpoint_seq: int
    checkpoint_hash: str


@dataclass(frozen=True)
class ChainLink:
    """One stored event as verification reads it."""
    id: UUID
    chain_seq: int
    prev_hash: str | None
    hash: str | None
    recomputed: str  # hash_sql over the stored columns
    consistent: bool  # the indexed columns (id, type, occurred_at, tenant) match the envelope


@dataclass
class Verification:
    checked: int = 0
    first_broken_id: UUID | None = None

    def as_json(self) -> dict:
        return {"checked": self.checked,
                "first_broken_id": str(self.first_broken_id) if self.first_broken_id else None}


class ChainWalker:
    """Feeds the stored links in chain order; the first one that does not follow from the one
    before it (altered, a gap where one was removed, out of place) is the first broken event.
    An event removed from the end shows against the chain head, which names it."""

    def __init__(self, head: ChainHead):
        self.head = head
        self.expected_seq = head.checkpoint_seq + 1
        self.running = head.checkpoint_hash
        self.result = Verification()

    def feed(self, link: ChainLink) -> bool:
        """False once the chain is broken (stop reading)."""
        self.result.checked += 1
        if (link.chain_seq != self.expected_seq or link.prev_hash != self.running
                or link.hash != link.recomputed or not link.consistent):
            self.result.first_broken_id = link.id
            return False
        self.running = link.hash
        self.expected_seq += 1
        return True

    def finish(self) -> Verification:
        if self.result.first_broken_id is None and (
                self.expected_seq - 1 != self.head.last_seq or self.running != self.head.last_hash):
            self.result.first_broken_id = self.head.last_event_id
        return self.result
