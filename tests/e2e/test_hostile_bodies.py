"""Hostile bodies through the gateway to the real services: every JSON route of the public
document answers 4xx to each (400 where the body is read), never a 5xx, and no traceback is logged."""
import uuid

from tests.e2e.api import scope, signup

BODIES = {
    "deep-arrays": b"[" * 50_000,
    "deep-objects": b'{"a":' * 20_000,
    "deep-balanced": b"[" * 3_000 + b"]" * 3_000,
    "huge-int": b'{"title": "x", "priority": ' + b"9" * 50_000 + b"}",
    "huge-exponent": b'{"email": "a@b.example", "password": 1e999}',
    "nan": b'{"title": NaN}',
    "lone-surrogate": b'{"email": "\\ud800@x.example", "password": "p", "name": "\\udfff"}',
    "nul": b'{"email": "a\\u0000@x.example", "password": "p\\u0000", "name": "n\\u0000", "title": "t\\u0000"}',
    "latin-1": '{"email": "é@x.example", "password": "pé"}'.encode("latin-1"),
    "utf-16": '{"email": "a@x.example"}'.encode("utf-16"),
    "gzip": __import__("gzip").compress(b'{"email": "a@x.example"}'),
}
UNSTORABLE = {"lone-surrogate", "nul"}  # valid JSON that PostgreSQL text cannot hold: 422 on the field
MUST_BE_400 = {("POST", "/v1/tickets"), ("POST", "/v1/auth/login"), ("POST", "/v1/auth/signup")}


async def test_hostile_bodies_never_get_a_5xx(stack, http):
    owner = await signup(http, "hostile", org_name=f"Hostile {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    doc = await (await http.get("/openapi.json")).json()
    routes = [(method.upper(), path) for path, ops in doc["paths"].items() for method, op in ops.items()
              if isinstance(op, dict) and "application/json" in op.get("requestBody", {}).get("content", {})]
    assert MUST_BE_400 <= set(routes) and len(routes) >= 10, routes
    seen, wrong = 0, []
    for method, template in routes:
        path = template.replace("{org_id}", owner.org_id)
        while "{" in path:
            path = path[:path.index("{")] + str(uuid.uuid4()) + path[path.index("}") + 1:]
        for name, raw in BODIES.items():
            headers = {**owner.auth, "Content-Type": "application/json"}
            if name == "gzip":
                headers["Content-Encoding"] = "gzip"
            resp = await http.request(method, path, data=raw, headers=headers)
            await resp.read()
            seen += 1
            expected = 422 if name in UNSTORABLE else 415 if name == "gzip" else 400
            if resp.status >= 500 or ((method, template) in MUST_BE_400 and resp.status != expected):
                wrong.append(f"{method} {template} [{name}] -> {resp.status}")
    assert not wrong, "\n".join(wrong)
    assert seen == len(routes) * len(BODIES)
    log = stack.log_path.read_text(errors="replace")
    assert "unhandled error" not in log and "RecursionError" not in log
