from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from shared.web import RequestModel

from ..tokens.schemas import TokensOut
from ..users.schemas import UserOut

# Login accepts any password up to a bound (the rules apply when one is chosen, not when it is
# presented); the bound keeps hashing cost predictable.
LOGIN_PASSWORD_MAX = 1024


class LoginRequest(RequestModel):
    email: str = Field(min_length=1, max_length=1024)
    password: str = Field(min_length=1, max_length=LOGIN_PASSWORD_MAX)
    organization_id: UUID | None = None


class LoginResponse(BaseModel):
    user: UserOut
    tokens: TokensOut


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=512)
    organization_id: UUID | None = None


class RefreshResponse(BaseModel):
    tokens: TokensOut


class SessionOut(BaseModel):
    id: UUID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    device: str | None = Field(description="Browser and operating system read from the user agent, "
                                            "e.g. 'Firefox 133 on Windows 10'")
    ip: str | None
    current: bool
