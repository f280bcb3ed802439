"""Every public route is declared in api_spec.OPERATIONS, and every declaration is routed."""
from auth_service.api_spec import OPERATIONS
from shared.openapi import build_document


def test_operations_match_the_routes(client):
    routed = set()
    for route in client.server.app.router.routes():
        path = route.resource.canonical
        # /internal/* is for the platform's own services: never public, never declared.
        if route.method == "HEAD" or path.startswith(("/health", "/metrics", "/internal/")):
            continue
        routed.add((route.method, path))
    declared = {(op.method, op.path) for op in OPERATIONS}
    assert declared == routed
    assert not any(p.startswith("/internal") for _, p in declared)
    doc = build_document(OPERATIONS, title="auth", version="1")
    assert doc["paths"]["/.well-known/jwks.json"]["get"]["security"] == []
    assert doc["paths"]["/v1/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
