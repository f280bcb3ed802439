"""The AsyncAPI 3 document of the events exchange, generated from ``shared.messaging.catalog``.

One channel per routing key (= event type), one message per type: the envelope of API.md with the
type's ``data`` schema. The gateway serves it at ``/asyncapi.json``; the generated copy is kept in
the repository (``shared/asyncapi.json``) and a test holds it equal to this generator's output:

    python -m shared.messaging.asyncapi --write     # regenerate shared/asyncapi.json
    python -m shared.messaging.asyncapi --check     # exit 1 when the file is stale
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .catalog import CATALOG, EventType

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "asyncapi.json"
EXCHANGE = "events"
AMQP_BINDING_VERSION = "0.3.0"

DESCRIPTION = """\
Every state change of the platform is published to the topic exchange `events` (durable), at
least once and never lost. The routing key is the event's `type`; messages are persistent,
`application/json`, with `message_id` = the event's `id`.

* **Binding a queue**: declare your own durable queue and bind it to `events` with the routing
  keys you need (`ticket.*`, `membership.#`, or `#` for everything).
* **At least once**: the same event may arrive more than once (deduplicate on `id`) and events
  may arrive out of order (order by `occurred_at` where it matters).
* **Versioning**: additive changes (a new optional field, a new event type) keep `version`;
  a breaking change raises it. Ignore fields you do not know.
* `data` never holds a password, a token or a token hash.
"""

UUID = {"type": "string", "format": "uuid"}


def envelope_schema() -> dict[str, Any]:
    """The envelope of API.md ("Events"), common to every message."""
    nullable_uuid = {"oneOf": [UUID, {"type": "null"}]}
    return {
        "type": "object",
        "required": ["id", "type", "version", "occurred_at", "source", "tenant_id", "actor", "subject",
                     "request_id", "data"],
        "additionalProperties": False,
        "properties": {
            "id": {**UUID, "description": "Event id (also the AMQP message_id); deduplicate on it."},
            "type": {"type": "string", "description": "Event type (also the routing key)."},
            "version": {"type": "integer", "minimum": 1,
                        "description": "Raised only by a breaking change of the type's schema."},
            "occurred_at": {"type": "string", "format": "date-time"},
            "source": {"type": "string", "description": "The producing service."},
            "tenant_id": {**nullable_uuid, "description": "The organization, null for user-level events."},
            "actor": {
                "type": "object",
                "required": ["user_id", "ip"],
                "additionalProperties": False,
                "properties": {
                    "user_id": nullable_uuid,
                    "ip": {"type": ["string", "null"]},
                    "api_key_id": {**nullable_uuid, "description": "Present when an API key acted."},
                    "staff": {"type": "boolean", "description": "Present (true) when platform staff acted."},
                },
            },
            "subject": {
                "type": "object", "required": ["type", "id"], "additionalProperties": False,
                "properties": {"type": {"type": "string"}, "id": {"type": "string"}},
            },
            "request_id": {"type": ["string", "null"]},
            "data": {"type": "object"},
        },
    }


def _data_schema(spec: EventType) -> dict[str, Any]:
    schema = spec.data.model_json_schema()
    schema.pop("title", None)
    return schema


def _message(spec: EventType) -> dict[str, Any]:
    data_ref = {"$ref": f"#/components/schemas/{spec.data.__name__}"}
    message: dict[str, Any] = {
        "name": spec.name,
        "title": spec.name,
        "summary": spec.summary,
        "contentType": "application/json",
        "correlationId": {"location": "$message.payload#/request_id"},
        "payload": {"allOf": [
            {"$ref": "#/components/schemas/Envelope"},
            {"properties": {"type": {"const": spec.name},
                            "subject": {"properties": {"type": {"const": spec.subject}}},
                            "data": data_ref}},
        ]},
        "bindings": {"amqp": {"deliveryMode": 2, "messageType": spec.name,
                              "bindingVersion": AMQP_BINDING_VERSION}},
    }
    if spec.provisional:
        message["x-provisional"] = True
    return message


def build_document() -> dict[str, Any]:
    schemas: dict[str, dict[str, Any]] = {"Envelope": envelope_schema()}
    channels, operations, messages = {}, {}, {}
    for name in sorted(CATALOG):
        spec = CATALOG[name]
        schemas.setdefault(spec.data.__name__, _data_schema(spec))
        messages[name] = _message(spec)
        channels[name] = {
            "address": name,
            "description": f"Routing key `{name}` on the topic exchange `{EXCHANGE}`.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"amqp": {"is": "routingKey",
                                  "exchange": {"name": EXCHANGE, "type": "topic", "durable": True,
                                               "autoDelete": False},
                                  "bindingVersion": AMQP_BINDING_VERSION}},
        }
        operations[f"receive.{name}"] = {
            "action": "receive",
            "summary": spec.summary,
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "SaaS events", "version": "1.0.0", "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {"rabbitmq": {"host": "rabbitmq:5672", "protocol": "amqp", "protocolVersion": "0-9-1",
                                 "description": "The deployment's broker (AMQP_URL)."}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render(document: dict[str, Any] | None = None) -> str:
    return json.dumps(document if document is not None else build_document(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.messaging.asyncapi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {DOCUMENT_PATH.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from the generator")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOCUMENT_PATH.write_text(text)
        return 0
    if args.check:
        current = DOCUMENT_PATH.read_text() if DOCUMENT_PATH.exists() else ""
        if current != text:
            print(f"{DOCUMENT_PATH} is stale: run python -m shared.messaging.asyncapi --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


class EventValidator:
    """Validates published events against an AsyncAPI document of this shape (tests and tools;
    needs the ``jsonschema`` package, a development dependency)."""

    BASE = "urn:saas:asyncapi"

    def __init__(self, document: dict[str, Any]) -> None:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7

        self.types = set(document["components"]["messages"])
        registry = Registry().with_resource(self.BASE, Resource.from_contents(document, default_specification=DRAFT7))
        self._validators = {
            name: jsonschema.Draft7Validator(
                {"$ref": f"{self.BASE}#/components/messages/{name}/payload"},
                registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
            for name in self.types}

    def errors(self, event: dict[str, Any]) -> list[str]:
        """Why ``event`` does not validate (empty when it does); an unknown type is an error."""
        validator = self._validators.get(event.get("type"))
        if validator is None:
            return [f"unknown event type {event.get('type')!r}"]
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in validator.iter_errors(event)]
