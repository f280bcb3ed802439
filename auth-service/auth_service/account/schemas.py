from __future__ import annotations

from pydantic import Field

from shared.web import RequestModel

from ..users.schemas import Email, NewPassword

TOKEN_MAX_LENGTH = 200


class VerifyEmailRequest(RequestModel):
    token: str = Field(min_length=1, max_length=TOKEN_MAX_LENGTH)


class PasswordResetRequestBody(RequestModel):
    email: Email


class PasswordResetBody(RequestModel):
    token: str = Field(min_length=1, max_length=TOKEN_MAX_LENGTH)
    new_password: NewPassword
