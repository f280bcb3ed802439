"""The public API document is assembled from what each service declares about its own routes,
using the same pydantic models that validate requests and shape responses, so it cannot drift.

Each service package exposes ``api_spec.OPERATIONS: list[Operation]``; the gateway merges them
into one OpenAPI 3.1 document.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
    },
}
_ERROR_TEXT = {400: "Malformed JSON", 401: "Missing, invalid, expired or revoked token", 403: "Role does not allow it",
               404: "Not found (or another organization's)", 409: "Conflict", 412: "If-Match does not match",
               413: "Body larger than 1 MiB", 415: "Body is not JSON", 422: "Validation failed",
               428: "If-Match required", 429: "Rate limited", 503: "A dependency is down"}


@dataclass
class Param:
    name: str
    location: str = "query"  # query | path | header
    schema: dict = field(default_factory=lambda: {"type": "string"})
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
    response_is_list: bool = False  # wrap in {"items": [...], "next_cursor": ...}
    errors: tuple[int, ...] = ()
    params: list[Param] = field(default_factory=list)
    query: type[BaseModel] | None = None  # query parameters taken from a model's fields
    public: bool = False           # True: no bearer token needed
    response_headers: tuple[str, ...] = ()
    description: str = ""
    # e.g. "application/x-ndjson": then ``response`` describes one line of the streamed body.
    response_media_type: str = "application/json"


def _ref(model: type[BaseModel], components: dict, mode: str) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_document(operations: list[Operation], *, title: str, version: str, description: str = "") -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, Any] = {}
    for op in operations:
        params = [
            {"name": p.name, "in": p.location, "required": p.required or p.location == "path",
             "schema": p.schema, **({"description": p.description} if p.description else {})}
            for p in op.params]
        if op.query is not None:
            qschema = op.query.model_json_schema()
            for name, prop in qschema.get("properties", {}).items():
                prop = {k: v for k, v in prop.items() if k != "title"}
                params.append({"name": name, "in": "query", "required": name in qschema.get("required", []),
                               "schema": prop})
        for seg in op.path.split("/"):
            if seg.startswith("{") and not any(p["name"] == seg[1:-1] for p in params):
                params.append({"name": seg[1:-1], "in": "path", "required": True,
                               "schema": {"type": "string", "format": "uuid"}})
        entry: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": _op_id(op),
                                 "parameters": params, "responses": {}}
        if op.description:
            entry["description"] = op.description
        if op.request is not None:
            entry["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _ref(op.request, components, "validation")}}}
        ok: dict[str, Any] = {"description": "Success",
                              "headers": {"X-Request-ID": {"schema": {"type": "string"}}}}
        for h in op.response_headers:
            ok["headers"][h] = {"schema": {"type": "string"}}
        if op.response is not None:
            schema = _ref(op.response, components, "serialization")
            if op.response_is_list:
                schema = {"type": "object", "required": ["items", "next_cursor"], "properties": {
                    "items": {"type": "array", "items": schema},
                    "next_cursor": {"type": ["string", "null"]}}}
            ok["content"] = {op.response_media_type: {"schema": schema}}
        entry["responses"][str(op.status)] = ok
        codes = set(op.errors) | {429, 503}
        if op.request is not None:
            codes |= {400, 413, 415, 422}
        if not op.public:
            codes.add(401)
            entry["security"] = [{"bearerAuth": []}]
        else:
            entry["security"] = []
        for code in sorted(codes):
            entry["responses"][str(code)] = {"description": _ERROR_TEXT.get(code, "Error"), "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _op_id(op: Operation) -> str:
    parts = [p for p in op.path.strip("/").split("/") if p and not p.startswith("{") and p != "v1"]
    return op.method.lower() + "_" + "_".join(x.replace("-", "_").replace(".", "_") for x in parts) + (
        "_item" if op.path.endswith("}") else "")
