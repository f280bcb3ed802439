"""A problem type per cause, through the gateway: four different 409 causes answer four
different `type`s (and `code`s), each listed in /openapi.json for the operation that answered it."""
import uuid

from tests.e2e.api import PASSWORD, expect, scope, signup


async def test_four_conflicts_answer_four_documented_types(stack, http):
    doc = await expect(await http.get("/openapi.json"), 200)
    listed = doc["components"]["x-problem-types"]
    owner = await signup(http, "conflicts", org_name=f"Conflicts {uuid.uuid4().hex[:6]}")
    owner = await scope(http, owner, owner.org_id)
    answers = {}

    resp = await http.post("/v1/auth/signup", json={"email": owner.email, "password": PASSWORD, "name": "Again"})
    answers[("post", "/v1/auth/signup")] = await expect(resp, 409)

    slug = f"taken-{uuid.uuid4().hex[:8]}"
    await expect(await http.post("/v1/organizations", headers=owner.auth, json={"name": "First", "slug": slug}), 201)
    resp = await http.post("/v1/organizations", headers=owner.auth, json={"name": "Second", "slug": slug})
    answers[("post", "/v1/organizations")] = await expect(resp, 409)

    resp = await http.delete(f"/v1/organizations/{owner.org_id}/members/{owner.id}", headers=owner.auth)
    answers[("delete", "/v1/organizations/{org_id}/members/{user_id}")] = await expect(resp, 409)

    ticket = await expect(await http.post("/v1/tickets", headers=owner.auth, json={"title": "Moves"}), 201)
    await expect(await http.patch(f"/v1/tickets/{ticket['id']}", headers={**owner.auth, "If-Match": "*"},
                                  json={"status": "closed"}), 200)
    resp = await http.patch(f"/v1/tickets/{ticket['id']}", headers={**owner.auth, "If-Match": "*"},
                            json={"status": "in_progress"})
    answers[("patch", "/v1/tickets/{ticket_id}")] = await expect(resp, 409)

    codes = [body["code"] for body in answers.values()]
    assert codes == ["email_taken", "slug_taken", "last_owner", "status_transition_not_allowed"]
    assert len({body["type"] for body in answers.values()}) == 4
    for (method, path), body in answers.items():
        assert body["status"] == 409 and body["request_id"] and body["title"] and body["detail"]
        assert listed[body["code"]]["type"] == body["type"]
        documented = doc["paths"][path][method]["responses"]["409"]["x-problem-types"]
        assert body["type"] in documented, (method, path, documented)
        assert body["code"] in doc["paths"][path][method]["responses"]["409"]["content"][
            "application/problem+json"]["examples"]
