"""The HTTP edge every process shares: request ids, problem+json errors, one JSON log line
per request, Prometheus metrics, health routes, and request parsing with pydantic."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import asyncpg
import orjson
import redis.exceptions as redis_errors
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import values as prometheus_values
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from .config import BaseServiceSettings
from .errors import (
    STATUS_CLASSES,
    BodyUnreadable,
    ContentEncodingNotAccepted,
    FieldError,
    JsonTooDeep,
    MalformedJson,
    PayloadTooLarge,
    ProblemError,
    RouteNotFound,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from .logging import REQUEST_ID_VAR

log = logging.getLogger("http")

SETTINGS = web.AppKey("settings", BaseServiceSettings)
READY_CHECKS = web.AppKey("ready_checks", list)
REQUEST_ID = web.RequestKey("request_id", str)
# Extra fields for this request's log line (e.g. the gateway's ``api_key_prefix``): never a secret.
LOG_CONTEXT = web.RequestKey("log_context", dict)

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

# prometheus-client's multiprocess values call os.getpid() on every update, to notice a fork: a
# system call each time (3% of ticket-service's CPU under list pages, py-spy --native). The same
# check against the pid cached here and renewed in every forked child, through the library's
# process_identifier hook (its one rule: distinct values in processes that run at once). Set
# before any metric of any service makes its values.
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client leaves MultiProcessValue unannotated.
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue(  # type: ignore[no-untyped-call]
        process_identifier=lambda: _PID[0])

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

M = TypeVar("M", bound=BaseModel)

# A dependency that is down or restarting: answered 503 at once, never a 500 or a hang.
DEPENDENCY_ERRORS = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError,
    redis_errors.ConnectionError, redis_errors.TimeoutError,
)
READY_CHECK_OK = Gauge("ready_check_ok", "1 when the readiness check passed at its last run, else 0",
                       ["service", "check"], multiprocess_mode="livemin")
DEPENDENCY_FAILURES = Counter("dependency_failures_total", "Requests answered 503 because a dependency failed",
                              ["service", "error"])


def request_id_of(request: web.Request) -> str:
    rid = request.get(REQUEST_ID)
    if isinstance(rid, str) and rid:
        return rid
    return request.headers.get(REQUEST_ID_HEADER) or ""


def pick_request_id(incoming: str | None) -> str:
    """Keep a sane incoming id (so one id follows a request through every hop), else mint one."""
    if incoming and _SANE_REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def problem_response(status: int, title: str, detail: str, *, request_id: str, type_: str | None = None,
                     code: str | None = None, errors: list[FieldError] | None = None,
                     headers: dict[str, str] | None = None) -> web.Response:
    """A problem+json answer; without ``type_``/``code`` the generic type of the status (registry)."""
    if type_ is None or code is None:
        generic = STATUS_CLASSES.get(status, ProblemError)
        type_, code = type_ or generic.type_uri(), code or generic.code
    body: dict[str, Any] = {
        "type": type_, "code": code,
        "title": title, "status": status, "detail": detail, "request_id": request_id,
    }
    if errors is not None:
        # A field is named by what the client sent (a query parameter's name, a body key): a NUL
        # in it is shown as U+FFFD, so the answer holds no NUL (the document says so).
        body["errors"] = [{"field": e.field.replace("\x00", "\ufffd"), "message": e.message.replace("\x00", "\ufffd")}
                          for e in errors]
    resp = web.Response(status=status, text=json.dumps(body), content_type="application/problem+json",
                        headers=headers)
    resp.headers[REQUEST_ID_HEADER] = request_id
    return resp


def render_problem(exc: ProblemError, request_id: str) -> web.Response:
    return problem_response(exc.status, exc.title, exc.detail, request_id=request_id, type_=exc.type,
                            code=exc.code, errors=exc.errors, headers=exc.headers)


_HTTP_DETAILS = {
    404: "No route matches this path.",
    405: "This route does not allow this method.",
    413: "The request body is larger than the limit.",
}


def route_template(request: web.Request) -> str:
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None:
        return "unmatched"
    canonical: str = resource.canonical
    return canonical


def make_edge_middleware(service: str) -> Middleware:
    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        rid = pick_request_id(request.headers.get(REQUEST_ID_HEADER))
        request[REQUEST_ID] = rid
        # Requests on one keep-alive connection share a task (and its context): reset below.
        rid_token = REQUEST_ID_VAR.set(rid)
        status = 500
        try:
            resp = await handler(request)
            status = resp.status
        except ProblemError as exc:
            resp = render_problem(exc, rid)
            status = resp.status
        except web.HTTPException as exc:
            if exc.status < 400:
                exc.headers[REQUEST_ID_HEADER] = rid
                status = exc.status
                raise
            cls = RouteNotFound if exc.status == 404 else STATUS_CLASSES.get(exc.status)
            title = cls.title if cls else exc.reason
            detail = _HTTP_DETAILS.get(exc.status, title)
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            resp = problem_response(exc.status, title, detail, request_id=rid, headers=headers,
                                    type_=cls.type_uri() if cls else None,
                                    code=cls.code if cls else None)
            status = resp.status
        except asyncio.CancelledError:
            status = 499
            raise
        except DEPENDENCY_ERRORS as exc:
            DEPENDENCY_FAILURES.labels(service, type(exc).__name__).inc()
            log.warning("dependency unavailable", extra={"request_id": rid, "route": route_template(request),
                                                         "error": type(exc).__name__})
            resp = render_problem(ServiceUnavailable("A service this request needs is unavailable; retry shortly.",
                                                     headers={"Retry-After": "1"}), rid)
            status = 503
        except Exception:
            # The trace goes to the log only; the client sees a generic 500 with the request id.
            log.exception("unhandled error", extra={"request_id": rid, "route": route_template(request)})
            resp = render_problem(ProblemError("An unexpected error occurred; quote the request id when reporting it."),
                                  rid)
            status = 500
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(request)
            if not route.startswith("/metrics"):
                HTTP_REQUESTS.labels(service, request.method, route, str(status)).inc()
                HTTP_LATENCY.labels(service, request.method, route).observe(elapsed)
            if log.isEnabledFor(logging.INFO) and not route.startswith("/health") and route != "/metrics":
                log.info("request", extra={
                    "request_id": rid, "method": request.method, "route": route, "status": status,
                    "duration_ms": round(elapsed * 1000, 2), "remote": request.remote,
                    **request.get(LOG_CONTEXT, {})})
            REQUEST_ID_VAR.reset(rid_token)
        if not resp.prepared:
            resp.headers[REQUEST_ID_HEADER] = rid
        return resp
    return edge


# ---------------------------------------------------------------- request parsing

def canonical_email(email: str) -> str:
    """The one rule for emails (API.md): compared trimmed and case-insensitively."""
    return email.strip().lower()


def normalize_email(value: object) -> object:
    """``canonical_email`` as a pydantic BeforeValidator (anything else is left to validation)."""
    return canonical_email(value) if isinstance(value, str) else value


class RequestModel(BaseModel):
    """Base for request bodies: unknown fields are an error, so a typo never passes silently."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        msg = err.get("msg", "invalid value")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(FieldError(loc, msg))
    return out


# For the API document: a string that must hold more than white space (and no U+0000). The
# services check it with strip(); this states it in the schema (json_schema_extra={"pattern": ...}).
NOT_BLANK = "^[^\\x00]*[^\\x00\\s][^\\x00]*$"
NOT_BLANK_SCHEMA: dict[str, JsonValue] = {"pattern": NOT_BLANK}


def _nul_fields(data: Any, path: str = "") -> list[FieldError]:
    """PostgreSQL text cannot hold U+0000: refused here, for every field of every request, as a
    422 (the API document states it as each string's pattern) instead of failing in the driver."""
    if isinstance(data, str):
        return [FieldError(path or "body", "must not contain NUL characters")] if "\x00" in data else []
    if isinstance(data, dict):
        return [e for k, v in data.items() for e in _nul_fields(v, f"{path}.{k}" if path else str(k))]
    if isinstance(data, list):
        return [e for i, v in enumerate(data) for e in _nul_fields(v, f"{path}.{i}" if path else str(i))]
    return []


def validate(model: type[M], data: Any) -> M:
    nul = _nul_fields(data)
    if nul:
        raise ValidationFailed("The request has invalid fields.", errors=nul)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("The request has invalid fields.", errors=_field_errors(exc)) from None


def is_identity_encoding(content_encoding: str) -> bool:
    """Request bodies are accepted uncompressed only: no decompression bombs, one code path."""
    return content_encoding.strip().lower() in ("", "identity")


def is_json_content_type(content_type: str) -> bool:
    ct = content_type.split(";", 1)[0].strip().lower()
    return ct == "application/json" or (ct.startswith("application/") and ct.endswith("+json"))


async def read_json(request: web.Request) -> Any:
    if not is_json_content_type(request.headers.get("Content-Type", "")):
        raise UnsupportedMediaType("Send the body as application/json.")
    if not is_identity_encoding(request.headers.get("Content-Encoding", "")):
        # Drained first (within the size limit), so a body that fails to decode is not left for
        # the server to trip over after the answer.
        with contextlib.suppress(web.HTTPRequestEntityTooLarge, RequestPayloadError, HttpProcessingError):
            await request.read()
        raise ContentEncodingNotAccepted()
    limit = request.app[SETTINGS].max_body_bytes if SETTINGS in request.app else 1024 * 1024
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes.") from None
    except (RequestPayloadError, HttpProcessingError):
        raise BodyUnreadable() from None
    return decode_json_body(raw)


# Limits on what a JSON body may contain (README "Request bodies"). Anything past them is a 400
# before any handler sees it, whatever the bytes: never a RecursionError turned into a 500.
MAX_JSON_DEPTH = 32          # nested arrays/objects; the deepest real body (a ticket) uses 2
MAX_JSON_INT_DIGITS = 19     # integers must fit a signed 64-bit column
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError("integer too large")
    value = int(text)
    if not _INT64[0] <= value <= _INT64[1]:
        raise ValueError("integer too large")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _check_strings(data: Any) -> None:
    """Iterative walk (no recursion): every string and key free of NUL and of unpaired
    surrogates, which PostgreSQL text cannot hold; 422 naming the field otherwise."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            _check_text(node, path or "body")
        elif isinstance(node, (dict, list)):
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                if isinstance(key, str):
                    _check_text(key, path or "body")
                stack.append((value, f"{path}.{key}" if path else str(key)))


def _check_text(value: str, field: str) -> None:
    if "\x00" in value:
        raise ValidationFailed("The request has invalid fields.",
                               errors=[FieldError(field, "must not contain a NUL character")])
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed("The request has invalid fields.",
                               errors=[FieldError(field, "must not contain an unpaired surrogate")]) from None


def decode_json_body(raw: bytes) -> Any:
    """Bytes to a JSON value. BadRequest (400) unless the body is UTF-8 JSON (RFC 8259) at most
    MAX_JSON_DEPTH levels deep, without NaN/Infinity, with integers within 64 bits and finite
    floats; ValidationFailed (422, naming the field) for a NUL or an unpaired surrogate in a
    string. Never raises anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("The body is not valid UTF-8.") from None
    # A body can only be too deep if it has that many brackets: the C-speed count keeps the walk
    # off the common path, and refusing before json.loads avoids deep recursion altogether.
    brackets = text.count("[") + text.count("{")
    if brackets > MAX_JSON_DEPTH and _max_bracket_depth(text) > MAX_JSON_DEPTH:
        raise JsonTooDeep(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                          parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise MalformedJson() from None
    if _SUSPECT_ESCAPE.search(raw):
        _check_strings(data)
    return data


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def _max_bracket_depth(text: str) -> int:
    """The deepest bracket nesting in ``text``, skipping string literals (an upper bound for
    malformed text, which json.loads refuses anyway)."""
    depth = deepest = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok in ("[", "{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif tok in ("]", "}"):
            depth -= 1
    return deepest


async def parse_body(request: web.Request, model: type[M]) -> M:
    return validate(model, await read_json(request))


def parse_query(request: web.Request, model: type[M]) -> M:
    data: dict[str, Any] = {}
    for key in request.query.keys():
        values = request.query.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    return validate(model, data)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = data.model_dump_json().encode() if isinstance(data, BaseModel) else dumps_json(data)
    return json_body_response(body, status=status, headers=headers)


def json_body_response(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A response whose body is JSON already (UTF-8): json_response's headers, nothing written."""
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8",
                        headers=headers)


# UUIDs as their text, datetimes in ISO 8601 with "Z" for UTC (as pydantic writes them), keys
# that are not strings as text (as json.dumps does).
_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def dumps_json(data: Any) -> bytes:
    """``data`` as compact UTF-8 JSON (orjson): the same document pydantic's model_dump_json
    writes for the same values, about ten times faster than json.dumps with a default hook.
    What orjson cannot write (an integer beyond 64 bits) goes through json.dumps."""
    try:
        return orjson.dumps(data, default=_orjson_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(data, default=_json_default, separators=(",", ":"), ensure_ascii=False).encode()


def _orjson_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):  # asyncpg's UUID is a subclass orjson does not take as one
        return str(value)
    return _json_default(value)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------- health and metrics

@dataclass
class ReadyCheck:
    name: str
    check: Callable[[web.Application], Awaitable[Any]]
    required: bool = True


def add_ready_check(app: web.Application, name: str, check: Callable[[web.Application], Awaitable[Any]], *,
                    required: bool = True) -> None:
    app[READY_CHECKS].append(ReadyCheck(name, check, required))


async def health_live(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def health_ready(request: web.Request) -> web.Response:
    app = request.app
    timeout = app[SETTINGS].ready_timeout_s

    async def run(chk: ReadyCheck) -> tuple[str, dict[str, Any]]:
        try:
            detail = await asyncio.wait_for(chk.check(app), timeout=timeout)
            out: dict[str, Any] = {"ok": True, "required": chk.required}
            if isinstance(detail, dict):
                out.update(detail)
            return chk.name, out
        except TimeoutError:
            return chk.name, {"ok": False, "required": chk.required, "error": "timeout"}
        except Exception as exc:  # the check's failure is the answer, not a 500
            return chk.name, {"ok": False, "required": chk.required, "error": type(exc).__name__}

    results = dict(await asyncio.gather(*(run(c) for c in app[READY_CHECKS])))
    service = app[SETTINGS].service_name
    for name, result in results.items():
        READY_CHECK_OK.labels(service, name).set(1 if result["ok"] else 0)
    failing = [n for n, r in results.items() if r["required"] and not r["ok"]]
    # A check that is not required reports a degraded dependency without failing readiness.
    degraded = [n for n, r in results.items() if not r["required"] and not r["ok"]]
    status = "unavailable" if failing else "degraded" if degraded else "ok"
    body: dict[str, object] = {"status": status, "checks": results}
    if failing:
        body["failing"] = failing
    if degraded:
        body["degraded"] = degraded
    return json_response(body, status=503 if failing else 200)


async def metrics(request: web.Request) -> web.Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Under gunicorn (shared.service.prepare_metrics_dir): every worker's values, summed.
        registry = CollectorRegistry()
        # prometheus_client leaves MultiProcessCollector.__init__ unannotated.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def base_app(settings: BaseServiceSettings, *, middlewares: Sequence[Middleware] = ()) -> web.Application:
    """An application with the shared edge, health and metrics; the caller adds its routes,
    ready checks and cleanup contexts."""
    app = web.Application(middlewares=[make_edge_middleware(settings.service_name), *middlewares],
                          client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[READY_CHECKS] = []
    app.router.add_get("/health/live", health_live)
    app.router.add_get("/health/ready", health_ready)
    app.router.add_get("/metrics", metrics)
    return app
