from aiohttp import web

from shared.web import SETTINGS, json_response

from .ring import KEYRING_JWKS


async def jwks(request: web.Request) -> web.Response:
    max_age = request.app[SETTINGS].jwks_max_age_s
    return json_response(request.app[KEYRING_JWKS], headers={"Cache-Control": f"public, max-age={max_age}"})
