"""The AsyncAPI 3 document of the events exchange: served by the gateway, kept in the repository
as generated, and covering every event type of the contract."""
import json
import re
from pathlib import Path

from shared.messaging import asyncapi
from shared.messaging.catalog import CATALOG

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO.parent / "shared" / "API.md"
TYPES = re.compile(r"^Types: (.*?)(?:\n\n)", re.M | re.S)

# Used only where the contract file is not beside the repository (e.g. a CI clone).
EMBEDDED_TYPES = """
user.registered auth.login_succeeded auth.login_failed auth.session_revoked auth.refresh_token_reused
auth.password_changed organization.created organization.updated organization.deleted invitation.created
invitation.accepted invitation.revoked membership.created membership.role_changed membership.removed
ticket.created ticket.updated ticket.deleted ticket.restored ticket.commented role.created role.updated
role.deleted api_key.created api_key.revoked staff.access_granted auth.email_verified
auth.password_reset_requested auth.password_reset
"""


def contract_event_types() -> set[str]:
    if CONTRACT.exists():
        match = TYPES.search(CONTRACT.read_text())
        assert match, "the contract's event types could not be found"
        # Parenthesised notes name fields (`data.changes`), not types.
        types = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", re.sub(r"\([^)]*\)", "", match.group(1))))
        assert len(types) >= 20, "the contract's event types could not be parsed"
        return types
    return set(EMBEDDED_TYPES.split())


async def test_gateway_serves_the_generated_document(gateway):
    resp = await gateway.get("/asyncapi.json")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert await resp.json() == asyncapi.build_document()


def test_the_repository_copy_equals_the_generator_output():
    assert asyncapi.DOCUMENT_PATH == REPO / "shared" / "asyncapi.json"
    assert asyncapi.DOCUMENT_PATH.read_text() == asyncapi.render(), \
        "shared/asyncapi.json is stale: run python -m shared.messaging.asyncapi --write"
    assert asyncapi.main(["--check"]) == 0


def test_every_event_type_of_the_contract_has_a_channel_and_a_message():
    doc = asyncapi.build_document()
    assert doc["asyncapi"] == "3.0.0"
    contract = contract_event_types()
    assert contract == set(CATALOG), (
        f"missing: {sorted(contract - set(CATALOG))}, not in the contract: {sorted(set(CATALOG) - contract)}")
    for name in contract:
        channel = doc["channels"][name]
        assert channel["address"] == name  # one channel per routing key
        assert channel["bindings"]["amqp"]["exchange"] == {"name": "events", "type": "topic", "durable": True,
                                                          "autoDelete": False}
        assert list(channel["messages"]) == [name]
        message = doc["components"]["messages"][name]
        assert message["contentType"] == "application/json"
        data_ref = message["payload"]["allOf"][1]["properties"]["data"]["$ref"]
        assert doc["components"]["schemas"][data_ref.rsplit("/", 1)[1]]["type"] == "object"
        assert doc["operations"][f"receive.{name}"]["channel"] == {"$ref": f"#/channels/{name}"}


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves():
    doc = json.loads(asyncapi.render())
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]


def test_the_validator_accepts_the_contract_and_refuses_drift():
    validator = asyncapi.EventValidator(asyncapi.build_document())
    event = {"id": "0b6f8c1e-6a39-4d47-8f0e-5b8e8d1c2a10", "type": "membership.role_changed", "version": 1,
             "occurred_at": "2026-11-29T10:00:00Z", "source": "tenant-service",
             "tenant_id": "7d1f0c4e-2b8a-4e9b-9c1d-3f5a6b7c8d9e",
             "actor": {"user_id": None, "ip": "203.0.113.9"}, "subject": {"type": "membership", "id": "a:b"},
             "request_id": "req-1",
             "data": {"organization_id": "7d1f0c4e-2b8a-4e9b-9c1d-3f5a6b7c8d9e",
                      "user_id": "0b6f8c1e-6a39-4d47-8f0e-5b8e8d1c2a10", "old_role": "agent", "role": "admin"}}
    assert validator.errors(event) == []
    assert validator.errors({**event, "type": "membership.rolechanged"}) == [
        "unknown event type 'membership.rolechanged'"]
    assert validator.errors({**event, "data": {**event["data"], "role": None}})
    assert validator.errors({**event, "data": {**event["data"], "password": "x"}})
    assert validator.errors({**event, "subject": {"type": "user", "id": "x"}})
    assert validator.errors({k: v for k, v in event.items() if k != "request_id"})
