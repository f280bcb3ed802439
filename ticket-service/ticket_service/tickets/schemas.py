"""Request and response models of the ticket routes (also the OpenAPI document's schemas)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from shared.pagination import PageQuery
from shared.web import NOT_BLANK_SCHEMA, RequestModel

# x-component: one named schema each in the API document (one enum in a generated client, not
# one per field).
Status = Annotated[Literal["open", "in_progress", "pending", "resolved", "closed"],
                   Field(json_schema_extra={"x-component": "TicketStatus"})]
Priority = Annotated[Literal["low", "normal", "high", "urgent"],
                     Field(json_schema_extra={"x-component": "TicketPriority"})]
Sort = Annotated[Literal["created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority"],
                 Field(json_schema_extra={"x-component": "TicketSort"})]

# Where a ticket may go from each status (API.md); any other move is 409.
STATUS_MOVES: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "pending", "resolved", "closed"}),
    "in_progress": frozenset({"open", "pending", "resolved", "closed"}),
    "pending": frozenset({"open", "in_progress", "resolved", "closed"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset({"open"}),
}


def no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refuse it here as a 422 instead of failing in the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _title(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _tag(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _tags(values: list[str]) -> list[str]:
    # Same tag twice means it once; first occurrence keeps its place.
    return list(dict.fromkeys(values))


Title = Annotated[str, Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK_SCHEMA), AfterValidator(no_nul),
                  AfterValidator(_title)]
Description = Annotated[str, Field(max_length=20000), AfterValidator(no_nul)]
Tag = Annotated[str, Field(min_length=1, max_length=32, json_schema_extra=NOT_BLANK_SCHEMA), AfterValidator(no_nul),
                AfterValidator(_tag)]
Tags = Annotated[list[Tag], Field(max_length=10), AfterValidator(_tags)]


class TicketCreate(RequestModel):
    title: Title
    description: Description = ""
    priority: Priority = "normal"
    tags: Tags = Field(default_factory=list)
    assignee_id: UUID | None = None


class TicketUpdate(RequestModel):
    """Only the fields sent are changed; ``assignee_id: null`` unassigns."""
    # Absent means unchanged; null is refused (422) for every field but assignee_id, so the API
    # document shows those as not nullable (SkipJsonSchema keeps None out of the schema).
    title: Title | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    status: Status | SkipJsonSchema[None] = None
    priority: Priority | SkipJsonSchema[None] = None
    assignee_id: UUID | None = None
    tags: Tags | SkipJsonSchema[None] = None

    @field_validator("title", "description", "status", "priority", "tags", mode="before")
    @classmethod
    def _not_null(cls, value):
        # Runs only for fields that were sent: these can be changed but not cleared.
        if value is None:
            raise ValueError("cannot be null")
        return value

    def sent(self) -> dict:
        return {name: getattr(self, name) for name in self.model_fields_set}


class TicketOut(BaseModel):
    id: UUID
    number: int
    title: str
    description: str
    status: Status
    priority: Priority
    tags: list[str]
    requester_id: UUID
    assignee_id: UUID | None
    created_at: datetime
    updated_at: datetime
    version: int


class TicketListQuery(PageQuery):
    status: Status | None = None
    priority: Priority | None = None
    assignee_id: UUID | None = None
    requester_id: UUID | None = None
    tag: Annotated[str, Field(min_length=1, max_length=32), AfterValidator(no_nul)] | None = None
    q: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_nul)] | None = None
    sort: Sort = "-created_at"
