"""Request and response models of the organization routes (also used by api_spec)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints

from shared.web import NOT_BLANK_SCHEMA, RequestModel, normalize_email

from .slugs import SLUG_PATTERN

# A role is named by a string: a built-in role (owner, admin, agent, member) or the name of a
# custom role of the organization (shared.permissions; tenant_service.roles resolves it, 422 when
# the organization has no such role). One named schema in the API document ("Role"), not an enum.
# At most 50 characters as sent (the document's maxLength), then stripped.
Role = Annotated[str, StringConstraints(min_length=1, max_length=50), AfterValidator(str.strip),
                 Field(json_schema_extra={"x-component": "Role", "pattern": r"\S",
                                          "examples": ["member", "agent", "admin", "owner"],
                                          "description": "A role name: a built-in one (`owner`, `admin`, "
                                                         "`agent`, `member`) or a custom role of the "
                                                         "organization."})]
OrgName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                    Field(json_schema_extra=NOT_BLANK_SCHEMA)]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, min_length=1, max_length=63)]


class OrganizationCreate(RequestModel):
    name: OrgName
    slug: Slug | None = Field(None, description="Lowercase [a-z0-9-]; derived from the name when absent.")


class OrganizationUpdate(RequestModel):
    name: OrgName | None = None
    slug: Slug | None = None


class Organization(BaseModel):
    id: UUID
    name: str
    slug: str
    created_at: datetime
    member_count: int


class MyOrganization(BaseModel):
    id: UUID
    name: str
    slug: str
    role: Role



# ---------------------------------------------------------------- internal (auth-service)

class InternalOrganizationCreate(RequestModel):
    name: OrgName
    owner_user_id: UUID
    # auth-service has validated the address already; only its shape is checked here, so an
    # address auth-service accepts can never fail a signup on a stricter rule.
    owner_email: Annotated[str, BeforeValidator(normalize_email),
                           StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]
    owner_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class InternalOrganization(BaseModel):
    id: UUID
    name: str
    slug: str
    created_at: datetime


class InternalMembership(BaseModel):
    organization_id: UUID
    role: Role
    permissions: list[str]  # what the role grants now (auth-service puts it in tokens as ``perms``)
    joined_at: datetime


class InternalMemberships(BaseModel):
    items: list[InternalMembership]


