"""The public API document is assembled from what each service declares about its own routes,
using the same pydantic models that validate requests and shape responses, so it cannot drift.

Each service package exposes ``api_spec.OPERATIONS: list[Operation]``; the gateway merges them
into one OpenAPI 3.1 document. An operation declares its ``operation_id`` (camelCase, unique: the
method name of a generated client), the problem types it can answer besides the ones every
operation of its kind can (``problems``, classes of the ``shared.errors`` registry), and an
example of its request body. Component schemas are named after the models, without an ``Out``
suffix (``TicketOut`` is ``Ticket``); a list answer is ``<Item>Page``.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from .errors import (
    PROBLEM_TYPES,
    STATUS_CLASSES,
    ApiKeyNotAllowed,
    BadGateway,
    BadTokenThrottled,
    BodyUnreadable,
    ContentEncodingNotAccepted,
    GatewayTimeout,
    InvalidApiKey,
    InvalidCursor,
    JsonTooDeep,
    MalformedJson,
    PayloadTooLarge,
    ProblemError,
    RateLimited,
    ServiceUnavailable,
    StaffReadOnly,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenRevoked,
    UnsupportedMediaType,
    ValidationFailed,
)

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details. Branch on `type` (a stable URI) or `code` (its short name); "
                   "every type the API can send is listed in `components.x-problem-types`.",
    "required": ["type", "code", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": "Stable URI of the cause."},
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "description": "Short name of the cause.",
                 "examples": ["email_taken", "status_transition_not_allowed"]},
        "title": {"type": "string"}, "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"}, "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
    },
}
FIELD_ERROR_SCHEMA = {"type": "object", "required": ["field", "message"],
                      "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "The request id (the client's when it sent a sane one); quote it when "
                                    "reporting a problem.", "schema": {"type": "string"}},
    "ETag": {"description": "Version of the resource; send it back in `If-Match`.",
             "schema": {"type": "string", "pattern": '^(W/)?"[^"]*"$'}},
    "RateLimit-Limit": {"description": "Requests allowed in the current window.",
                        "schema": {"type": "integer", "minimum": 0}},
    "RateLimit-Remaining": {"description": "Requests left in the current window.",
                            "schema": {"type": "integer", "minimum": 0}},
    "RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": {"type": "integer", "minimum": 0}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}},
    "Idempotent-Replayed": {"description": "`true` when the answer is the replay of an earlier request with "
                                           "the same `Idempotency-Key`.", "schema": {"type": "string",
                                                                                    "enum": ["true"]}},
    "Cache-Control": {"description": "How long the answer may be cached.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "The authentication scheme (`Bearer`).", "schema": {"type": "string"}},
}
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "A user's access token (EdDSA/ES256 JWT, 15 minutes) from signup, login or "
                                  "refresh."},
    "apiKeyAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "sk_...",
                   "description": "An organization's API key, sent as `Authorization: Bearer sk_...`. It acts "
                                  "with its own permissions in its own organization; `/v1/auth/*` user routes "
                                  "answer 403 to a key."},
}

_STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                409: "Conflict", 412: "Precondition Failed", 413: "Payload Too Large", 415: "Unsupported Media Type",
                422: "Unprocessable Content", 428: "Precondition Required", 429: "Too Many Requests",
                500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
_OPERATION_ID = re.compile(r"^[a-z][a-zA-Z0-9]*$")


@dataclass
class Param:
    name: str
    location: str = "query"  # query | path | header
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    description: str = ""


@dataclass
class Operation:
    method: str
    path: str                      # OpenAPI path template, e.g. /v1/tickets/{ticket_id}
    summary: str
    tag: str
    status: int = 200
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_is_list: bool = False  # wrap in {"items": [...], "next_cursor": ...}: <Item>Page
    errors: tuple[int, ...] = ()    # statuses answered with their generic problem type
    params: list[Param] = field(default_factory=list)
    query: type[BaseModel] | None = None  # query parameters taken from a model's fields
    public: bool = False           # True: no bearer token needed
    response_headers: tuple[str, ...] = ()
    description: str = ""
    operation_id: str = ""         # camelCase, unique: createTicket, listTickets, ...
    problems: tuple[type[ProblemError], ...] = ()  # the specific problem types it can answer
    request_example: dict[str, Any] | None = None
    rate_limited: bool = True      # proxied behind the gateway's rate limiter (RateLimit-*, 429, 502, 504)
    api_key: bool = True           # an API key may call it (False: user routes, /v1/auth/*)
    # Of the success answer; e.g. "application/x-ndjson": then ``response`` describes one line
    # of the streamed body.
    response_media_type: str = "application/json"
    other_responses: dict[int, type[BaseModel]] = field(default_factory=dict)  # non-problem answers, e.g. 503

    def problem_types(self) -> list[type[ProblemError]]:
        """Every problem type this operation can answer: its own, plus those of its kind."""
        found: list[type[ProblemError]] = [PROBLEM_TYPES[c.code].cls for c in self.problems]
        if self.request is not None:
            found += [MalformedJson, JsonTooDeep, BodyUnreadable, PayloadTooLarge, UnsupportedMediaType,
                      ContentEncodingNotAccepted, ValidationFailed]
        if self.query is not None or any(p.location in ("query", "header") for p in self.params):
            found.append(ValidationFailed)
        if self.query is not None and "cursor" in self.query.model_fields:
            found.append(InvalidCursor)
        if not self.public:
            found += [TokenMissing, TokenInvalid, TokenExpired, TokenRevoked]
            found.append(InvalidApiKey if self.api_key else ApiKeyNotAllowed)
            if self.method.upper() not in ("GET", "HEAD", "OPTIONS"):
                found.append(StaffReadOnly)   # platform staff's tokens only read
        if self.rate_limited:   # proxied by the gateway: its limiter, and an upstream that fails
            found += [RateLimited, BadGateway, GatewayTimeout]
            if not self.public:   # invalid tokens or keys counted per client address
                found.append(BadTokenThrottled)
        found.append(ServiceUnavailable)
        covered = {c.status for c in found}
        found += [STATUS_CLASSES[s] for s in self.errors if s not in covered and s in STATUS_CLASSES]
        return list(dict.fromkeys(found))


def component_name(model: type[BaseModel]) -> str:
    name = model.__name__
    return name[:-3] if name.endswith("Out") and len(name) > 3 else name


def _ref(model: type[BaseModel], components: dict[str, Any],
         mode: Literal["validation", "serialization"]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_params(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    qschema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in qschema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    params = []
    for name, prop in qschema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k not in ("title", "description")}
        # An optional query parameter is absent, never null: drop the null branch and default.
        options = [o for o in prop.get("anyOf", []) if o != {"type": "null"}]
        if "anyOf" in prop and len(options) < len(prop["anyOf"]):
            rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            prop = {**options[0], **rest} if len(options) == 1 else {**rest, "anyOf": options}
            if prop.get("default", 0) is None:
                del prop["default"]
        description = qschema["properties"][name].get("description", "")
        if name == "cursor":
            description = description or ("Opaque: the `next_cursor` of the previous page, valid only with the "
                                          "same sort and filters (422 `invalid_cursor` otherwise).")
        params.append({"name": name, "in": "query", "required": name in qschema.get("required", []),
                       "schema": prop, **({"description": description} if description else {})})
    return params


def _problem_responses(op: Operation) -> dict[str, Any]:
    by_status: dict[int, list[type[ProblemError]]] = {}
    for cls in op.problem_types():
        by_status.setdefault(cls.status, []).append(cls)
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        types = [PROBLEM_TYPES[c.code] for c in by_status[status]]
        lines = "\n".join(f"- `{t.code}`: {' '.join(t.description.split())}" for t in types)
        headers: dict[str, Any] = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
        if status == 429:
            headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After", "required": True}
            headers.update({h: {"$ref": f"#/components/headers/{h}"} for h in RATE_LIMIT_HEADERS})
        if status == 401:
            headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWW-Authenticate"}
        if status == 503:
            headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
        if status == 412 and any(t.code == "etag_mismatch" for t in types):
            headers["ETag"] = {"$ref": "#/components/headers/ETag"}
        responses[str(status)] = {
            "description": f"{_STATUS_TEXT.get(status, 'Error')}:\n\n{lines}",
            "headers": headers,
            "x-problem-types": [t.uri for t in types],
            "content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "examples": {t.code: {"summary": t.code, "value": t.example()} for t in types}}}}
    # The HTTP server answers a request it cannot parse (a request line or header over 8 KiB)
    # before any API code runs, in plain text.
    bad = responses.setdefault("400", {"description": "Bad Request.", "headers": {}, "content": {}})
    bad["description"] += ("\n\nA request the HTTP server cannot parse (a request line or a header over 8 KiB) "
                           "is answered before the API, as `text/plain`.")
    bad["content"]["text/plain"] = {"schema": {"type": "string"}}
    return responses


def _walk_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
                name = v.rsplit("/", 1)[1]
                v = "#/components/schemas/" + renames.get(name, name)
            out[k] = _walk_refs(v, renames)
        return out
    if isinstance(node, list):
        return [_walk_refs(v, renames) for v in node]
    return node


def _drop_null_defaults(node: Any) -> Any:
    """``default: null`` on a property that cannot be null (an optional PATCH field: absent means
    unchanged) would describe a value the service refuses."""
    if isinstance(node, dict):
        out = {k: _drop_null_defaults(v) for k, v in node.items()}
        if "default" in out and out["default"] is None and "null" not in str(out.get("type")) \
                and not any(s.get("type") == "null" for s in out.get("anyOf", []) if isinstance(s, dict)):
            del out["default"]
        return out
    if isinstance(node, list):
        return [_drop_null_defaults(v) for v in node]
    return node


NO_NUL = "^[^\\x00]*$"


def _no_nul_strings(node: Any) -> Any:
    """Every string the services accept is free of U+0000 (shared.web.validate refuses it)."""
    if isinstance(node, dict):
        out = {k: _no_nul_strings(v) for k, v in node.items()}
        if out.get("type") == "string" and not ({"pattern", "format", "enum", "const"} & set(out)):
            out["pattern"] = NO_NUL
        return out
    if isinstance(node, list):
        return [_no_nul_strings(v) for v in node]
    return node


def _lift_named(node: Any, components: dict[str, Any]) -> Any:
    """A property schema marked ``x-component: Name`` (e.g. a role name) becomes one named schema."""
    if isinstance(node, dict):
        name = node.get("x-component")
        if isinstance(name, str):
            body = {k: v for k, v in node.items() if k not in ("x-component", "title", "default")}
            components.setdefault(name, body)
            ref: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
            if "default" in node:
                ref["default"] = node["default"]
            return ref
        return {k: _lift_named(v, components) for k, v in node.items()}
    if isinstance(node, list):
        return [_lift_named(v, components) for v in node]
    return node


def build_document(operations: list[Operation], *, title: str, version: str, description: str = "",
                   servers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA, "FieldError": FIELD_ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for op in operations:
        params = [
            {"name": p.name, "in": p.location, "required": p.required or p.location == "path",
             "schema": p.schema, **({"description": p.description} if p.description else {})}
            for p in op.params]
        if op.query is not None:
            params += _query_params(op.query, components)
        for seg in op.path.split("/"):
            if seg.startswith("{") and not any(p["name"] == seg[1:-1] for p in params):
                params.append({"name": seg[1:-1], "in": "path", "required": True,
                               "schema": {"type": "string", "format": "uuid"}})
        entry: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": op.operation_id or _op_id(op),
                                 "parameters": params, "responses": {}}
        if op.description:
            entry["description"] = op.description
        if op.request is not None:
            media: dict[str, Any] = {"schema": _ref(op.request, components, "validation")}
            if op.request_example is not None:
                media["example"] = op.request_example
            entry["requestBody"] = {"required": True, "content": {"application/json": media}}
        ok: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "Success"),
                              "headers": {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}}
        if op.rate_limited:
            ok["headers"].update({h: {"$ref": f"#/components/headers/{h}"} for h in RATE_LIMIT_HEADERS})
        for h in op.response_headers:
            ok["headers"][h] = {"$ref": f"#/components/headers/{h}"} if h in HEADERS else {"schema": {"type": "string"}}
        if op.response is not None:
            schema = _ref(op.response, components, "serialization")
            if op.response_is_list:
                page = component_name(op.response) + "Page"
                components.setdefault(page, {
                    "type": "object", "title": page, "required": ["items", "next_cursor"], "properties": {
                        "items": {"type": "array", "items": schema},
                        "next_cursor": {"type": ["string", "null"],
                                        "description": "Opaque; send it as `cursor` for the next page; "
                                                       "null on the last page."}}})
                schema = {"$ref": f"#/components/schemas/{page}"}
            ok["content"] = {op.response_media_type: {"schema": schema}}
        elif op.status == 200:
            ok["content"] = {op.response_media_type: {"schema": {}}}
        entry["responses"][str(op.status)] = ok
        entry["responses"].update(_problem_responses(op))
        for code, model in op.other_responses.items():
            entry["responses"][str(code)] = {
                "description": _STATUS_TEXT.get(code, "Error"),
                "headers": {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}},
                "content": {"application/json": {"schema": _ref(model, components, "serialization")}}}
        if op.public:
            entry["security"] = []
        else:
            entry["security"] = [{"bearerAuth": []}] + ([{"apiKeyAuth": []}] if op.api_key else [])
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    renames = {name: name[:-3] for name in components
               if name.endswith("Out") and len(name) > 3 and name[:-3] not in components}
    components = {renames.get(k, k): v for k, v in components.items()}
    for old, new in renames.items():
        if components[new].get("title") == old:
            components[new]["title"] = new
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": servers or [{"url": "/", "description": "The gateway serving this document"}],
        "tags": [{"name": t} for t in dict.fromkeys(op.tag for op in operations)],
        "paths": paths,
        "components": {"schemas": components, "headers": copy.deepcopy(HEADERS),
                       "securitySchemes": copy.deepcopy(SECURITY_SCHEMES),
                       "x-problem-types": problem_type_listing()},
    }
    doc = _walk_refs(doc, renames)
    doc["components"]["schemas"] = _no_nul_strings(_drop_null_defaults(doc["components"]["schemas"]))
    doc["paths"] = _no_nul_strings(doc["paths"])
    named: dict[str, Any] = {}
    schemas = _lift_named(doc["components"]["schemas"], named)
    doc["paths"] = _lift_named(doc["paths"], named)
    doc["components"]["schemas"] = {**schemas, **{k: v for k, v in named.items() if k not in schemas}}
    return doc


def problem_type_listing() -> dict[str, dict[str, Any]]:
    """Every problem type of the registry, by code: what a client can branch on."""
    return {t.code: {"type": t.uri, "status": t.status, "title": t.title, "description": t.description}
            for t in sorted(PROBLEM_TYPES.values(), key=lambda t: (t.status, t.code))}


def check_operation_id(value: str) -> bool:
    return bool(_OPERATION_ID.match(value))


def _op_id(op: Operation) -> str:
    """A fallback camelCase id for an operation that does not declare one (the test asks for one)."""
    parts = [p for p in op.path.strip("/").split("/") if p and not p.startswith("{") and p != "v1"]
    words = [op.method.lower()] + [w for p in parts for w in re.split(r"[-_.]", p) if w]
    if op.path.endswith("}"):
        words.append("item")
    return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])
