"""JSON logs, one object per line. Secrets never reach a log line: known secret-bearing keys
are redacted whatever logs them, and bearer tokens inside messages are masked."""
from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import TextIO

REDACT_KEYS = {"authorization", "password", "new_password", "current_password", "token",
               "access_token", "refresh_token", "cookie", "set-cookie", "x-internal-token",
               "secret", "password_hash"}
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# The request being handled (set by shared.web's edge middleware): every line logged while it
# runs carries its id, not only the per-request line.
REQUEST_ID_VAR: ContextVar[str | None] = ContextVar("request_id", default=None)


# An API key keeps its 12-character prefix (how it is named in logs), never the rest.
_API_KEY = re.compile(r"(sk_[A-Za-z0-9_-]{9})[A-Za-z0-9_-]{20,}")
_RESERVED = set(vars(logging.LogRecord("x", 0, "x", 0, "", None, None))) | {"message", "asctime"}
# What each pattern above needs to match at all: one search decides whether a string (most are
# request ids, routes, methods) needs the three substitutions.
_SUSPECT = re.compile(r"(?i)bearer|eyJ|sk_")


def scrub(value: object) -> object:
    if isinstance(value, str):
        if _SUSPECT.search(value) is None:
            return value
        return _API_KEY.sub(r"\1[redacted]", _JWT.sub("[redacted-jwt]", _BEARER.sub(r"\1[redacted]", value)))
    if isinstance(value, dict):
        return {k: ("[redacted]" if str(k).lower() in REDACT_KEYS else scrub(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service
        self._second, self._second_text = -1, ""

    def _ts(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # strftime once a second, not once a line
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self._ts(record),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = "[redacted]" if key.lower() in REDACT_KEYS else scrub(value)
        if "request_id" not in out:
            rid = REQUEST_ID_VAR.get()
            if rid:
                out["request_id"] = rid
        if record.exc_info:
            # Exceptions go to the log (never to a response), with their type and a scrubbed trace.
            out["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def _client_fault(record: logging.LogRecord) -> bool:
    """aiohttp logs a body the client sent broken (bad gzip, bad chunking) as an "Unhandled
    exception" with a trace while draining it after our answer (a 4xx already sent): keep one
    line with the error type, without the trace."""
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and type(exc).__name__ in ("RequestPayloadError", "ContentEncodingError",
                                                  "TransferEncodingError", "ContentLengthError"):
        record.msg, record.args = "malformed request body from the client", ()
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text = None, None
        record.error = type(exc).__name__
    return True


def setup_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log is replaced by shared.web's one line per request.
    logging.getLogger("aiohttp.access").disabled = True
    server_log = logging.getLogger("aiohttp.server")
    if _client_fault not in server_log.filters:
        server_log.addFilter(_client_fault)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
