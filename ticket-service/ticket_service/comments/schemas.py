from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StrictBool

from shared.pagination import PageQuery
from shared.web import NOT_BLANK_SCHEMA, RequestModel

from ..tickets.schemas import no_nul


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class CommentCreate(RequestModel):
    body: Annotated[str, Field(min_length=1, max_length=20000, json_schema_extra=NOT_BLANK_SCHEMA),
                    AfterValidator(no_nul), AfterValidator(_not_blank)]
    internal: StrictBool = False   # true or false, not 0/1 or "yes"


class CommentOut(BaseModel):
    id: UUID
    ticket_id: UUID
    author_id: UUID
    body: str
    internal: bool
    created_at: datetime


class CommentListQuery(PageQuery):
    """``limit`` 1..100 (default 20) and ``cursor``; oldest comment first."""
