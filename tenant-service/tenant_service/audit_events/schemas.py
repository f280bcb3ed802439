"""Query and item models of the audit log route."""
from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, StringConstraints, model_validator

# The items are the stored envelopes exactly as published (API.md, "Events").
from shared.messaging.envelope import Event as AuditEvent  # noqa: F401  (re-exported for api_spec)
from shared.pagination import PageQuery

_NUMBER = re.compile(r"^\s*[+-]?[0-9.]+([eE][+-]?[0-9]+)?\s*$")


def _rfc3339_only(value):
    # pydantic would read a bare number as a Unix time; the document says RFC 3339.
    if isinstance(value, str) and _NUMBER.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]


class AuditEventQuery(PageQuery):
    type: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="Exact event type, e.g. membership.role_changed")
    actor_id: UUID | None = Field(None, description="User id of the actor")
    subject_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="Subject id (a membership's is `{org_id}:{user_id}`)")
    since: Instant | None = Field(None, description="occurred_at >= since (RFC 3339 with offset)")
    until: Instant | None = Field(None, description="occurred_at < until (RFC 3339 with offset)")

    @model_validator(mode="after")
    def _window(self):
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self


class AuditExportQuery(BaseModel):
    """The export's filters (no paging: the whole selection is streamed, oldest first)."""
    type: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="Exact event type, e.g. membership.role_changed")
    since: Instant | None = Field(None, description="occurred_at >= since (RFC 3339 with offset)")
    until: Instant | None = Field(None, description="occurred_at < until (RFC 3339 with offset)")

    @model_validator(mode="after")
    def _window(self):
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self


class AuditChainVerification(BaseModel):
    checked: int = Field(description="Events examined, from the retention checkpoint on")
    first_broken_id: UUID | None = Field(
        description="The first event that does not follow from the one before it (altered, out of place, or "
                    "the one after a removed event; the last one recorded when the newest were removed); "
                    "null when the chain is intact")
