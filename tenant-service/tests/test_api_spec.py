"""Every public route is declared in api_spec.OPERATIONS, and nothing else is."""
import re

from shared.openapi import build_document
from tenant_service.api_spec import OPERATIONS


def test_operations_match_the_router(client):
    routed = set()
    for resource in client.app.router.resources():
        path = resource.canonical
        if not path.startswith("/v1/"):
            continue
        for route in resource:
            if route.method != "HEAD":
                routed.add((route.method, path))
    declared = {(op.method, op.path) for op in OPERATIONS}
    normalise = lambda pairs: {(m, re.sub(r"\{[^}]+\}", "{}", p)) for m, p in pairs}  # noqa: E731
    assert normalise(declared) == normalise(routed)
    assert not any(p.startswith("/internal") for _, p in declared)


def test_document_builds():
    doc = build_document(OPERATIONS, title="tenant", version="1")
    audit = doc["paths"]["/v1/organizations/{org_id}/audit-events"]["get"]
    assert {p["name"] for p in audit["parameters"]} >= {"org_id", "type", "actor_id", "subject_id", "since", "until",
                                                        "limit", "cursor"}
    assert "201" in doc["paths"]["/v1/organizations/{org_id}/invitations"]["post"]["responses"]
