"""One API document for the whole public API, and the offline documentation page."""
import re
from pathlib import Path

import pytest

from gateway.app import PUBLIC
from shared.openapi import Operation

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO.parent / "shared" / "API.md"
ROUTE_ROW = re.compile(r"^\|\s*`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]+)`\s*\|", re.M)

# Used only where the contract file is not beside the repository (e.g. a CI clone).
EMBEDDED_CONTRACT = """
POST /v1/auth/signup
POST /v1/auth/login
POST /v1/auth/refresh
POST /v1/auth/logout
POST /v1/auth/logout-all
GET /v1/auth/sessions
DELETE /v1/auth/sessions/{id}
GET /v1/auth/me
POST /v1/auth/password
POST /v1/organizations
GET /v1/organizations
GET /v1/organizations/{org_id}
PATCH /v1/organizations/{org_id}
DELETE /v1/organizations/{org_id}
GET /v1/organizations/{org_id}/members
POST /v1/organizations/{org_id}/invitations
GET /v1/organizations/{org_id}/invitations
DELETE /v1/organizations/{org_id}/invitations/{id}
POST /v1/invitations/accept
PATCH /v1/organizations/{org_id}/members/{user_id}
DELETE /v1/organizations/{org_id}/members/{user_id}
GET /v1/organizations/{org_id}/audit-events
POST /v1/tickets
GET /v1/tickets
GET /v1/tickets/{id}
PATCH /v1/tickets/{id}
DELETE /v1/tickets/{id}
POST /v1/tickets/{id}/restore
POST /v1/tickets/{id}/comments
GET /v1/tickets/{id}/comments
"""


def contract_routes() -> set[tuple[str, str]]:
    if CONTRACT.exists():
        routes = set(ROUTE_ROW.findall(CONTRACT.read_text()))
        assert len(routes) >= 25, "the contract's route tables could not be parsed"
    else:
        routes = {tuple(line.split(" ", 1)) for line in EMBEDDED_CONTRACT.strip().splitlines()}
    return {(m, _shape(p)) for m, p in routes} | {("GET", "/.well-known/jwks.json")}


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


async def test_openapi_lists_every_route_of_the_contract(gateway):
    resp = await gateway.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), _shape(path)) for path, item in doc["paths"].items() for method in item}
    missing = sorted(contract_routes() - documented)
    assert not missing, f"routes of API.md missing from /openapi.json: {missing}"
    assert "Incomplete" not in doc["info"]["description"]


# Routes about the user's own memberships: an organization's API key has no user.
# Routes a signed-in user calls, never an API key: managing keys and platform staff's routes too.
USER_ONLY = {"/v1/organizations", "/v1/invitations/accept", "/v1/organizations/{org_id}/api-keys",
             "/v1/organizations/{org_id}/api-keys/{key_id}", "/v1/admin/organizations", "/v1/admin/access"}


async def test_openapi_marks_public_and_protected_routes(gateway):
    doc = await (await gateway.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["paths"]["/health/live"]["get"]["security"] == []
    assert doc["paths"]["/.well-known/jwks.json"]["get"]["security"] == []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            # The document and the gateway agree on which routes need no token.
            if (method.upper(), path) in PUBLIC:
                assert op["security"] == [], path
            elif path.startswith("/v1/"):
                assert op["security"][0] == {"bearerAuth": []}, (method, path)
                assert "401" in op["responses"], (method, path)
                if path.startswith("/v1/auth/") or path in USER_ONLY:   # user routes: an API key gets 403
                    assert op["security"] == [{"bearerAuth": []}], (method, path)
                else:
                    assert op["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}], (method, path)
    schemes = doc["components"]["securitySchemes"]
    assert (schemes["apiKeyAuth"]["type"], schemes["apiKeyAuth"]["scheme"]) == ("http", "bearer")
    assert schemes["apiKeyAuth"]["bearerFormat"].startswith("sk_")


def test_a_broken_spec_module_is_reported_not_fatal():
    from gateway.config import Settings
    from gateway.docs import build_openapi, collect_operations
    ops, missing = collect_operations(["no_such_service.api_spec", "gateway.api_spec"])
    assert missing == ["no_such_service.api_spec"]
    assert all(isinstance(o, Operation) for o in ops)
    doc = build_openapi(Settings(api_spec_modules="no_such_service.api_spec"))
    assert "Incomplete" in doc["info"]["description"]
    assert "/health/ready" in doc["paths"]


async def test_docs_page_works_offline(gateway):
    resp = await gateway.get("/docs")
    assert resp.status == 200
    html = await resp.text()
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "http://" not in html and "https://" not in html     # no CDN
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    for asset in re.findall(r'(?:src|href)="(/docs/[^"]+)"', html):
        asset_resp = await gateway.get(asset)
        assert asset_resp.status == 200, asset
        assert len(await asset_resp.read()) > 0
    js = await (await gateway.get("/docs/static/swagger-ui-bundle.js")).read()
    assert len(js) > 100_000
    # Swagger UI renders OpenAPI 3.1 from major version 5 on (3.x shows "Unable to render").
    version = re.search(rb'PACKAGE_VERSION:"(\d+)\.', js)
    assert version and int(version.group(1)) >= 5
    init = await (await gateway.get("/docs/init.js")).text()
    assert '"/openapi.json"' in init


@pytest.mark.parametrize("path", ["/docs/static/../../config.py", "/docs/static/%2e%2e/index.html",
                                  "/docs/static/swagger-editor-bundle.js", "/docs/static/LICENSE"])
async def test_docs_static_does_not_escape(gateway, path):
    resp = await gateway.get(path)
    assert resp.status in (403, 404)
