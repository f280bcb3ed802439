from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, Field, field_validator

from shared.web import NOT_BLANK_SCHEMA, RequestModel, canonical_email

from ..tokens.schemas import TokensOut
from .passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, password_problem

EMAIL_MAX_LENGTH = 254


def checked_email(value: str) -> str:
    email = canonical_email(value)
    if len(email) > EMAIL_MAX_LENGTH:
        raise ValueError(f"must be at most {EMAIL_MAX_LENGTH} characters")
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("is not a valid email address") from None
    return email


def checked_new_password(value: str) -> str:
    problem = password_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# The lengths are in the schema too (the API document states them); the validator also
# refuses common passwords.
NewPassword = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH,
                                   description="10 to 128 characters, not a common password"),
                        AfterValidator(checked_new_password)]
Email = Annotated[str, Field(max_length=EMAIL_MAX_LENGTH, json_schema_extra={"format": "email"}),
                  AfterValidator(checked_email)]


class SignupRequest(RequestModel):
    email: Email
    password: NewPassword
    name: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK_SCHEMA)
    organization_name: str | None = Field(None, min_length=1, max_length=100, json_schema_extra=NOT_BLANK_SCHEMA)

    @field_validator("name", "organization_name")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class InternalUserOut(BaseModel):
    id: UUID
    email: str
    name: str
    created_at: datetime


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str
    created_at: datetime


class OrganizationOut(BaseModel):
    id: UUID
    name: str
    slug: str
    created_at: datetime


class SignupResponse(BaseModel):
    user: UserOut
    organization: OrganizationOut | None = None
    tokens: TokensOut


class MeOut(BaseModel):
    id: UUID
    email: str
    name: str
    email_verified: bool
    organization_id: UUID | None
    role: str | None
    permissions: list[str] = Field(description="What the token may do in its organization (empty without one)")


class PasswordChangeRequest(RequestModel):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH * 8)
    new_password: NewPassword
