"""Request and response models of the role and permission routes (also used by api_spec)."""
from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from shared.pagination import PageQuery
from shared.permissions import BUILTIN_ROLES, STAFF_ROLE, unknown
from shared.web import RequestModel


def _catalogue_names(names: list[str]) -> list[str]:
    missing = unknown(names)
    if missing:
        raise ValueError(f"not in the permission catalogue (GET /v1/permissions): {', '.join(missing)}")
    return sorted(set(names))


RoleName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50,
                                            pattern=r"^[^\x00-\x1f\x7f:]+$")]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
PermissionNames = Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=64),
                            AfterValidator(_catalogue_names)]

RESERVED_NAMES = frozenset(BUILTIN_ROLES) | {STAFF_ROLE}


class PermissionOut(BaseModel):
    name: str
    description: str


class PermissionList(BaseModel):
    items: list[PermissionOut]


class RoleCreate(RequestModel):
    name: RoleName = Field(description="Unique in the organization (any letter case); not a built-in name. "
                                       "No control characters or ':'.")
    description: Description = ""
    permissions: PermissionNames = Field(description="Names from GET /v1/permissions; each one the caller holds.")


class RoleUpdate(RequestModel):
    name: RoleName | None = None
    description: Description | None = None
    permissions: PermissionNames | None = None


class RoleOut(BaseModel):
    id: UUID
    name: str
    description: str
    permissions: list[str]
    builtin: bool


class RoleListQuery(PageQuery):
    pass
