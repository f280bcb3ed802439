"""Schemathesis hooks for the full run through the gateway (loaded with SCHEMATHESIS_HOOKS).

Some values are valid only in relation to the API's state or to each other, which a schema cannot
say; each answer below is documented (its problem type is in the operation's responses) and
covered by the services' own tests. Positive cases (the ones schemathesis expects accepted) get a
value that is valid in this state; negative cases are left alone.

- ``cursor`` is opaque and signed: one the API did not issue is 422 ``invalid_cursor``.
- an ``Idempotency-Key`` used before with another body is 422 ``idempotency_key_reused``.
- ``assignee_id`` must name an agent+ member (422 ``assignee_not_assignable``): the fuzzing
  organization has only its owner, so positive cases leave the ticket unassigned.
- a ``role`` must be one of the organization's roles (422): positive cases name a built-in one.
- the audit log's ``since`` must not be after ``until`` (422): positive cases send them in order.
- a new password must not be in the shipped list of common passwords (422).
- an email's domain must not be a special-use name (``.test``, ``.local``, ...; 422).
"""
from __future__ import annotations

import uuid
from datetime import datetime

import schemathesis
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from schemathesis.core.parameters import ParameterLocation

from auth_service.users.passwords import common_passwords

ROLES = ("member", "agent", "admin", "owner")
SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)


def _negative(case, location: ParameterLocation) -> bool:
    return case.meta is not None and case.meta.is_negative_at(location)


@schemathesis.hook
def map_case(context, case):
    if case.query and not _negative(case, ParameterLocation.QUERY):
        query = dict(case.query)
        query.pop("cursor", None)
        try:
            if datetime.fromisoformat(query["since"]) > datetime.fromisoformat(query["until"]):
                query.pop("since")
        except (KeyError, TypeError, ValueError):
            pass
        case.query = query
    headers = case.headers or {}
    if isinstance(headers.get("Idempotency-Key"), str) and not _negative(case, ParameterLocation.HEADER):
        case.headers = {**headers, "Idempotency-Key": headers["Idempotency-Key"][:200] + "-" + uuid.uuid4().hex}
    if isinstance(case.body, dict) and not _negative(case, ParameterLocation.BODY):
        body = dict(case.body)
        if body.get("assignee_id") is not None:
            body["assignee_id"] = None
        if isinstance(body.get("role"), str) and body["role"] not in ROLES:
            body["role"] = "member"
        for name in ("password", "new_password"):
            if isinstance(body.get(name), str) and body[name].strip().lower() in common_passwords():
                body[name] = body[name][:100] + "-Fz9" + uuid.uuid4().hex[:8]
        email = body.get("email")
        if isinstance(email, str) and email.rsplit("@", 1)[-1].rsplit(".", 1)[-1].lower() in SPECIAL_USE:
            body["email"] = email.rsplit("@", 1)[0] + "@example.com"
        case.body = body
    return case
