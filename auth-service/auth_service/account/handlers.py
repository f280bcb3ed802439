from aiohttp import web

from shared.context import request_context
from shared.web import parse_body

from ..sessions.handlers import current_principal
from .schemas import PasswordResetBody, PasswordResetRequestBody, VerifyEmailRequest
from .service import ACCOUNTS


async def request_verification(request: web.Request) -> web.Response:
    principal = await current_principal(request)
    await request.app[ACCOUNTS].request_verification(principal)
    return web.Response(status=202)


async def verify_email(request: web.Request) -> web.Response:
    body = await parse_body(request, VerifyEmailRequest)
    await request.app[ACCOUNTS].verify_email(body.token, request_context(request))
    return web.Response(status=204)


async def request_password_reset(request: web.Request) -> web.Response:
    body = await parse_body(request, PasswordResetRequestBody)
    await request.app[ACCOUNTS].request_password_reset(body.email, request_context(request))
    return web.Response(status=202)


async def reset_password(request: web.Request) -> web.Response:
    body = await parse_body(request, PasswordResetBody)
    await request.app[ACCOUNTS].reset_password(body, request_context(request))
    return web.Response(status=204)
