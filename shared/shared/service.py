"""Process entry points shared by every service.

    python -m <package>                 development server (aiohttp, one process)
    python -m <package> serve           gunicorn with aiohttp's uvloop worker (<PREFIX>_WORKERS)
    python -m <package> migrate ...     up | down [N] | status | new NAME
    python -m <package> declare-queues  declare the exchange and this process's consumer queues
"""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from aiohttp import web

from . import migrations
from .config import BaseServiceSettings
from .logging import JsonFormatter, setup_logging

if TYPE_CHECKING:
    from gunicorn.config import Config
    from gunicorn.workers.base import Worker

AppFactory = Callable[[BaseServiceSettings], web.Application]
# A service's own settings class: its factories take that class, not the base.
S = TypeVar("S", bound=BaseServiceSettings)


class UnsafeConfiguration(SystemExit):
    """The process refuses to start (non-zero exit); the message names the settings."""


def check_start_up_settings(settings: BaseServiceSettings) -> None:
    """Before a process serves anything. ENVIRONMENT=production (the default): any secret
    problem ends the process with exit status 78 and a message naming each setting.
    ENVIRONMENT=development: the same problems are logged as warnings."""
    import logging
    problems = settings.secret_problems()
    if not problems:
        return
    if settings.environment == "production":
        message = (f"{settings.service_name}: refusing to start with ENVIRONMENT=production: "
                   + "; ".join(problems) + " (or set ENVIRONMENT=development for a local run)")
        print(message, file=sys.stderr, flush=True)
        logging.getLogger("config").critical("refusing to start", extra={"problems": problems})
        raise UnsafeConfiguration(78)
    for problem in problems:
        logging.getLogger("config").warning("development settings: " + problem)


def gunicorn_factory(settings_cls: type[S],
                     create_app: Callable[[S], web.Application]) -> Callable[[], Awaitable[web.Application]]:
    """An async app factory for ``gunicorn pkg.app:gunicorn_app -k aiohttp.GunicornUVLoopWebWorker``."""
    async def gunicorn_app() -> web.Application:
        settings = settings_cls()
        setup_logging(settings.service_name, settings.log_level)
        check_start_up_settings(settings)
        app = create_app(settings)
        tune_gc(settings)
        return app
    return gunicorn_app


def tune_gc(settings: BaseServiceSettings) -> None:
    """Once the app is built: what start-up made (modules, routes, models) leaves the collector's
    reach (``gc.freeze``), and the young generation is collected every ``GC_GEN0_THRESHOLD``
    container allocations instead of Python's 700. A list page allocates a few hundred (records,
    rows, dicts), so at 700 the collector ran every few requests: 7% of ticket-service's CPU
    under list pages (py-spy --native), none at 10,000. Reference counting still frees almost
    everything at once; only cycles wait for the next pass."""
    import gc
    gc.freeze()
    gc.set_threshold(settings.gc_gen0_threshold, *gc.get_threshold()[1:])


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(settings: BaseServiceSettings) -> bool:
    """Metrics of every gunicorn worker in one scrape: prometheus-client's multiprocess mode.

    The directory (``PROMETHEUS_MULTIPROC_DIR``, else one per service and port under the temp
    directory) is emptied at every start: files left by an earlier run would add their counts
    to this one's. The variable must be set before prometheus_client is imported, which the
    service's modules have done by now; so when it was not set, the caller re-executes the
    process with it (returns True)."""
    path = os.environ.get(MULTIPROC_ENV)
    reexec = not path
    if not path:
        path = os.path.join(tempfile.gettempdir(), f"prometheus-{settings.service_name}-{settings.port}")
        os.environ[MULTIPROC_ENV] = path
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
    return reexec


def _json_gunicorn_logger(service: str) -> type[object]:
    from gunicorn.glogging import Logger

    class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type information
        """gunicorn's own lines (boot, worker start and exit, timeouts) in the services' JSON."""

        def setup(self, cfg: Config) -> None:
            super().setup(cfg)
            formatter = JsonFormatter(service)
            for logger in (self.error_log, self.access_log):
                for handler in logger.handlers:
                    handler.setFormatter(formatter)
    return JsonLogger


def _mark_worker_dead(server: object, worker: Worker) -> None:
    # The dead worker's live gauges (multiprocess_mode live*) leave the scrape with it.
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess
        # prometheus_client leaves mark_process_dead unannotated.
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def serve_gunicorn(settings: BaseServiceSettings, app_path: str) -> None:
    from gunicorn.app.base import BaseApplication
    from gunicorn.util import import_app

    class _App(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type information
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{settings.host}:{settings.port}",
                "workers": settings.workers,
                "worker_class": "aiohttp.GunicornUVLoopWebWorker",
                "graceful_timeout": int(settings.shutdown_timeout_s),
                "timeout": 60,
                "keepalive": 75,
                "accesslog": None,
                "proc_name": settings.service_name,
                "logger_class": _json_gunicorn_logger(settings.service_name),
                "child_exit": _mark_worker_dead,
            }.items():
                self.cfg.set(key, value)

        def load(self) -> object:
            return import_app(app_path)

    _App().run()


def main(settings_cls: type[S], create_app: Callable[[S], web.Application], *, app_path: str,
         migrations_dir: Path | None, argv: list[str] | None = None,
         consumer_groups: Callable[[S], list[tuple[str, list[str]]]] | None = None) -> int:
    """``consumer_groups(settings) -> [(group, bindings)]`` names the process's consumers for
    ``declare-queues``; without it they are read from the app the factory builds."""
    argv = sys.argv[1:] if argv is None else argv
    settings = settings_cls()
    if argv and argv[0] == "migrate":
        if settings.migrations_dir:
            migrations_dir = Path(settings.migrations_dir)
        if migrations_dir is None:
            print("this process has no migrations", file=sys.stderr)
            return 2
        return migrations.cli(argv[1:], dsn=settings.migrate_database_url, schema=settings.db_schema,
                              own_dir=migrations_dir)
    if argv and argv[0] == "declare-queues":
        return declare_queues(settings, create_app, consumer_groups)
    setup_logging(settings.service_name, settings.log_level)
    if argv and argv[0] not in ("dev", "serve"):
        print(f"unknown command {argv[0]!r}; use dev, serve, migrate or declare-queues", file=sys.stderr)
        return 2
    check_start_up_settings(settings)  # under gunicorn, each worker checks again in gunicorn_app
    if argv and argv[0] == "serve":
        if prepare_metrics_dir(settings):
            # sys.orig_argv keeps "-m package" (sys.argv does not).
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
        serve_gunicorn(settings, app_path)
        return 0
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    from .db import UnsafeDatabaseRole
    try:
        app = create_app(settings)
        tune_gc(settings)
        web.run_app(app, host=settings.host, port=settings.port,
                    shutdown_timeout=settings.shutdown_timeout_s, access_log=None, print=None)
    except UnsafeDatabaseRole as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return 78
    return 0


def declare_queues(settings: S, create_app: Callable[[S], web.Application],
                   consumer_groups: Callable[[S], list[tuple[str, list[str]]]] | None = None) -> int:
    import asyncio

    from .messaging.topology import app_consumer_groups, declare_topology
    groups = consumer_groups(settings) if consumer_groups else app_consumer_groups(create_app(settings))
    try:
        asyncio.run(declare_topology(settings.amqp_url.get_secret_value(), settings.events_exchange, groups))
    except (OSError, ConnectionError) as exc:
        print(f"declare-queues: broker unreachable: {type(exc).__name__}", file=sys.stderr)
        return 1
    names = ", ".join(f"{g} <- {' '.join(b)}" for g, b in groups) or "no consumer groups"
    print(f"declare-queues: exchange {settings.events_exchange!r}; {names}")
    return 0
