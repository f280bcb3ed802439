"""A tiny process built with the shared entry point, for the tests that run it under gunicorn."""
import asyncio
import gc
import logging
import os
import sys

from shared.config import BaseServiceSettings
from shared.service import gunicorn_factory, main
from shared.web import base_app, json_response


def create_app(settings):
    app = base_app(settings)

    async def slow(request):
        await asyncio.sleep(float(request.query.get("s", "1")))
        return json_response({"done": True})
    app.router.add_get("/slow", slow)

    async def pid(request):
        logging.getLogger("slow_app").info("answering from a worker", extra={"pid": os.getpid()})
        return json_response({"pid": os.getpid()})
    app.router.add_get("/pid", pid)

    async def gc_state(request):
        return json_response({"pid": os.getpid(), "threshold": gc.get_threshold()[0], "frozen": gc.get_freeze_count()})
    app.router.add_get("/gc", gc_state)
    return app


class Settings(BaseServiceSettings):
    service_name: str = "slow-app"


gunicorn_app = gunicorn_factory(Settings, create_app)

if __name__ == "__main__":
    sys.path.insert(0, ".")
    raise SystemExit(main(Settings, create_app, app_path="slow_app:gunicorn_app", migrations_dir=None))
