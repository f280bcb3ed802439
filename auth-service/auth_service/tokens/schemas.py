from typing import Literal

from pydantic import BaseModel


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
