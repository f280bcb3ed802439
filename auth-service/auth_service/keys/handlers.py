from aiohttp import web

from shared.web import SETTINGS, json_response

from ..config import Settings
from .ring import KEYRING_JWKS


async def jwks(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    assert isinstance(settings, Settings)  # shared's key is typed with the base settings class
    max_age = settings.jwks_max_age_s
    return json_response(request.app[KEYRING_JWKS], headers={"Cache-Control": f"public, max-age={max_age}"})
