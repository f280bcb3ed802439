"""Property-based fuzzing of the whole public API through the gateway, from its own OpenAPI
document, with a real organization-scoped token: no 5xx, and no response that violates the
document. Bounded so CI stays fast (FUZZ_EXAMPLES per operation, default 8)."""
import asyncio
import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                         response_schema_conformance, status_code_conformance)

from tests.e2e.api import scope, signup

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Operations that would end the fuzzing session itself or its organization.
SKIP = {("POST", "/v1/auth/logout"), ("POST", "/v1/auth/logout-all"), ("DELETE", "/v1/organizations/{org_id}"),
        ("POST", "/v1/auth/password")}


def fuzz(base_url: str, token: str, org_id: str) -> tuple[list[str], dict]:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    failures: list[str] = []
    calls: dict[str, int] = {}
    expected = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        expected += 1

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            if "org_id" in (case.path_parameters or {}):
                case.path_parameters["org_id"] = org_id  # also exercise the organization's own routes
            response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
            key = f"{operation.method.upper()} {operation.path}"
            calls[key] = calls.get(key, 0) + 1
            case.validate_response(response, checks=CHECKS)
        try:
            run()
        except Exception as exc:  # collect every operation's failure, report all at once
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    return failures, calls, expected


async def test_fuzz_the_public_api_through_the_gateway(stack, http):
    owner = await signup(http, "fuzz", org_name=f"Fuzz {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    failures, calls, expected = await asyncio.to_thread(fuzz, stack.url, owner.access, owner.org_id)
    print(f"fuzzed {len(calls)} operations with {sum(calls.values())} requests")
    # Every operation of the document was exercised: not a vacuous pass.
    assert expected >= 25 and len(calls) == expected, calls
    if failures:
        pytest.fail(f"{len(failures)} operations failed:\n" + "\n\n".join(failures))
