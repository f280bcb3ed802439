"""Request and response models of the role and permission routes (also used by api_spec)."""
from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from shared.permissions import BUILTIN_ROLES, PERMISSION_NAME_SCHEMA, STAFF_ROLE, unknown
from shared.web import RequestModel


def _catalogue_names(names: list[str]) -> list[str]:
    missing = unknown(names)
    if missing:
        raise ValueError(f"not in the permission catalogue (GET /v1/permissions): {', '.join(missing)}")
    return sorted(set(names))


_ROLE_NAME = re.compile(r"[^\x00-\x1f\x7f:]+")


def _role_name(value: str) -> str:
    value = value.strip()
    if not value or not _ROLE_NAME.fullmatch(value):
        raise ValueError("must hold a character other than white space, and no control character or ':'")
    return value


# At most 50 characters as sent (the document's maxLength), stored without surrounding white
# space; the document's pattern states the same (surrounding white space allowed, at least one
# other character, no control character or ':').
RoleName = Annotated[str, Field(min_length=1, max_length=50, json_schema_extra={
    "pattern": r"^\s*[^\x00-\x1f\x7f:]*[^\x00-\x1f\x7f:\s][^\x00-\x1f\x7f:]*\s*$"}), AfterValidator(_role_name)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
PermissionNames = Annotated[list[Annotated[str, StringConstraints(max_length=64),
                                           Field(json_schema_extra=PERMISSION_NAME_SCHEMA)]], Field(max_length=64),
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


class RoleDefinitionOut(BaseModel):
    """A role of the organization: its name (a `Role` elsewhere) and the permissions it grants."""
    id: UUID
    name: str
    description: str
    permissions: list[str]
    builtin: bool

