"""Every problem the services can raise is a registered problem type of shared.errors and is
documented in the gateway's OpenAPI document; every operation is named for a generated client.

The raise sites are found by reading the source (ast) of every process package and shared/, so
a new ``raise SomethingNew(...)`` is checked the day it is written."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.docs import build_openapi, collect_operations
from shared import errors
from shared.errors import PROBLEM_TYPES, ProblemError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"shared": ROOT / "shared" / "shared", "gateway": ROOT / "gateway" / "gateway",
            "auth_service": ROOT / "auth-service" / "auth_service",
            "tenant_service": ROOT / "tenant-service" / "tenant_service",
            "ticket_service": ROOT / "ticket-service" / "ticket_service"}
# A bare status class says "some 409", not which one: services raise the class of the cause.
# (ValidationFailed, the field-level 422 with `errors`, is itself a cause; so are the edge's 413,
# 415, 429 and the 5xx of a dependency, which have one cause each.)
TOO_GENERIC = {errors.ProblemError, errors.BadRequest, errors.Unauthorized, errors.Forbidden, errors.NotFound,
               errors.Conflict, errors.PreconditionFailed, errors.PreconditionRequired}
# Raised outside any public operation: internal routes, CORS preflights, unknown paths.
NOT_AN_OPERATION = {"internal_token_required", "signup_rollback_refused", "cors_not_allowed", "route_not_found",
                    "user_not_found"}


def _module_name(package: str, path: Path) -> str:
    rel = path.relative_to(PACKAGES[package]).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([package, *parts])


def raised_problem_classes() -> dict[type[ProblemError], list[str]]:
    """Every ProblemError subclass raised (``raise X(...)`` or ``raise X``) in the packages."""
    found: dict[type[ProblemError], list[str]] = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            if path.name == "__main__.py":
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            names = []
            for node in ast.walk(tree):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    if isinstance(target, ast.Name):
                        names.append((target.id, node.lineno))
                    elif isinstance(target, ast.Attribute):
                        names.append((target.attr, node.lineno))
            if not names:
                continue
            module = importlib.import_module(_module_name(package, path))
            for name, line in names:
                obj = getattr(module, name, None) or getattr(errors, name, None)
                if isinstance(obj, type) and issubclass(obj, ProblemError):
                    found.setdefault(obj, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


@pytest.fixture(scope="module")
def raised():
    return raised_problem_classes()


@pytest.fixture(scope="module")
def document():
    return build_openapi(Settings())


def test_the_scan_finds_the_raise_sites(raised):
    # Not vacuous: the well-known causes are found where they are raised.
    codes = {cls.code for cls in raised}
    assert {"email_taken", "slug_taken", "last_owner", "status_transition_not_allowed", "etag_mismatch",
            "if_match_required", "invalid_cursor", "token_missing", "token_revoked"} <= codes, codes
    assert len(raised) >= 30


def test_every_raised_problem_is_a_registered_cause(raised):
    for cls, where in raised.items():
        assert cls not in TOO_GENERIC, f"{cls.__name__} raised at {where}: raise the class of the cause"
        registered = PROBLEM_TYPES.get(cls.code)
        assert registered is not None, f"{cls.__name__} ({where}) has no registered problem type"
        # A subclass without a type_slug of its own answers with its parent's type: not "some 409".
        assert registered.cls not in TOO_GENERIC, f"{cls.__name__} ({where}) needs its own type_slug and code"
        assert issubclass(cls, registered.cls) and registered.status == cls.status, cls
        # The type is defined in the one registry, not in a service.
        assert registered.cls.__module__ == "shared.errors", registered


def test_the_registry_is_consistent():
    slugs = [t.slug for t in PROBLEM_TYPES.values()]
    assert len(slugs) == len(set(slugs))
    for code, t in PROBLEM_TYPES.items():
        assert code == t.code and re.fullmatch(r"[a-z][a-z0-9_]*", code), code
        assert re.fullmatch(r"[a-z][a-z0-9-]*", t.slug), t.slug
        assert 400 <= t.status <= 599 or t.code == "internal_error", t
        assert t.description and t.title
    with pytest.raises(TypeError):
        class Duplicate(errors.Conflict):  # noqa: F841 - a second class for a published slug
            type_slug, code = "email-taken", "email_taken_again"


def test_every_problem_type_is_in_the_document(document, raised):
    listed = document["components"]["x-problem-types"]
    assert set(listed) == set(PROBLEM_TYPES)
    for code, t in PROBLEM_TYPES.items():
        assert listed[code]["type"] == t.uri and listed[code]["status"] == t.status
    # Each raised cause is named by at least one operation's responses (the ones that can answer it).
    per_operation: set[str] = set()
    status_of = {entry["type"]: entry["status"] for entry in listed.values()}
    for item in document["paths"].values():
        for op in item.values():
            for status, response in op["responses"].items():
                for uri in response.get("x-problem-types", []):
                    per_operation.add(uri)
                    assert str(status_of[uri]) == status, (op["operationId"], uri, status)
                examples = response.get("content", {}).get("application/problem+json", {}).get("examples", {})
                assert {e["value"]["type"] for e in examples.values()} == set(response.get("x-problem-types", []))
    for cls in raised:
        t = PROBLEM_TYPES[cls.code]
        if t.code not in NOT_AN_OPERATION:
            assert t.uri in per_operation, f"{t.code} is raised but no operation documents it"


def test_operations_are_named_for_a_generated_client():
    operations, missing = collect_operations(Settings().api_spec_modules.split(","))
    assert not missing
    ids = [op.operation_id for op in operations]
    assert all(ids), [f"{op.method} {op.path}" for op in operations if not op.operation_id]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for op in operations:
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", op.operation_id), op.operation_id
        if op.request is not None:
            # An example for every body, and it is one the service accepts.
            assert op.request_example is not None, op.operation_id
            op.request.model_validate(op.request_example)


def test_document_names_schemas_headers_and_security(document):
    schemas = document["components"]["schemas"]
    assert {"Ticket", "TicketPage", "Role", "Problem", "Comment", "CommentPage", "Member", "MemberPage"} <= set(schemas)
    assert not [name for name in schemas if re.fullmatch(r".*Response\d{3}", name)]
    # Role is one named string schema, referenced wherever a role is.
    assert schemas["Role"]["type"] == "string" and "enum" not in schemas["Role"]
    assert schemas["Member"]["properties"]["role"] == {"$ref": "#/components/schemas/Role"}
    assert "code" in schemas["Problem"]["required"]
    assert document["servers"]
    assert {"bearerAuth", "apiKeyAuth"} == set(document["components"]["securitySchemes"])
    create = document["paths"]["/v1/tickets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["example"]
    ok = create["responses"]["201"]["headers"]
    assert {"ETag", "X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(ok)
    assert "Retry-After" in create["responses"]["429"]["headers"]
    patch = document["paths"]["/v1/tickets/{ticket_id}"]["patch"]
    assert set(patch["responses"]) >= {"409", "412", "428"}
    assert patch["responses"]["409"]["x-problem-types"] == [
        "https://errors.saas.example/status-transition-not-allowed"]
    if_match = next(p for p in patch["parameters"] if p["name"] == "If-Match")
    assert if_match["required"] and if_match["schema"]["pattern"]
    # A field a PATCH cannot clear is not nullable.
    update = schemas["TicketUpdate"]["properties"]
    for name in ("title", "description", "status", "priority", "tags"):
        assert "null" not in str(update[name]), (name, update[name])
    assert "null" in str(update["assignee_id"])
