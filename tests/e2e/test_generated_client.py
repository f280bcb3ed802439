"""A Python client generated from the gateway's /openapi.json with openapi-python-client (pinned
in constraints.txt) runs a journey against the stack: what a client-app developer would do.

The generated names are part of the test: a method per operationId (``create_ticket``,
``list_tickets``, ``update_ticket``, ...), named models (``Ticket``, ``TicketPage``), the ETag and
problem bodies readable through the generated types."""
from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.api import PASSWORD, unique_email

PACKAGE = "saas_client"


def generate(document: dict, where: Path) -> None:
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    bin_dir = Path(sys.executable).parent
    # The generator formats its output with ruff (a pinned dev dependency) found on PATH.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(bin_dir / "openapi-python-client"), "generate", "--path", str(spec), "--meta", "none",
                           "--output-path", str(where / PACKAGE)], cwd=where, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    # A warning means a piece of the document could not be turned into code.
    assert "Warning" not in done.stdout and "Unable" not in done.stdout, done.stdout


def load(where: Path):
    sys.path.insert(0, str(where))
    try:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))


def journey(base_url: str, where: Path) -> dict:
    sys.path.insert(0, str(where))
    try:
        from saas_client import AuthenticatedClient, Client
        from saas_client.api.auth import get_me, refresh_tokens, signup
        from saas_client.api.tickets import (
            create_comment,
            create_ticket,
            get_ticket,
            list_comments,
            list_tickets,
            update_ticket,
        )
        from saas_client.models import (
            CommentCreate,
            Problem,
            RefreshRequest,
            SignupRequest,
            Ticket,
            TicketCreate,
            TicketPage,
            TicketPriority,
            TicketStatus,
            TicketUpdate,
        )
    finally:
        sys.path.remove(str(where))
    seen: dict = {}
    email = unique_email("genclient")
    with Client(base_url=base_url, raise_on_unexpected_status=True) as anonymous:
        created = signup.sync_detailed(client=anonymous, body=SignupRequest(
            email=email, password=PASSWORD, name="Generated Client",
            organization_name=f"Generated {uuid.uuid4().hex[:6]}"))
        assert created.status_code == 201, created.content
        org_id = created.parsed.organization.id
        again = signup.sync_detailed(client=anonymous, body=SignupRequest(email=email, password=PASSWORD, name="X"))
        assert again.status_code == 409 and isinstance(again.parsed, Problem)
        seen["signup_again"] = again.parsed.code
        scoped = refresh_tokens.sync_detailed(client=anonymous, body=RefreshRequest(
            refresh_token=created.parsed.tokens.refresh_token, organization_id=org_id))
        assert scoped.status_code == 200, scoped.content
        token = scoped.parsed.tokens.access_token

    with AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True) as client:
        me = get_me.sync_detailed(client=client)
        assert me.status_code == 200 and me.parsed.organization_id == org_id and me.parsed.role == "owner"
        tickets = []
        for i in range(3):
            resp = create_ticket.sync_detailed(
                client=client, idempotency_key=f"gen-{uuid.uuid4().hex}",
                body=TicketCreate(title=f"Generated ticket {i}", priority=TicketPriority.HIGH, tags=["generated"]))
            assert resp.status_code == 201, resp.content
            assert isinstance(resp.parsed, Ticket) and resp.headers["ETag"] == f'"{resp.parsed.version}"'
            tickets.append(resp.parsed)
        assert [t.number for t in tickets] == [1, 2, 3]

        first = list_tickets.sync_detailed(client=client, limit=2, tag="generated")
        assert first.status_code == 200 and isinstance(first.parsed, TicketPage)
        assert len(first.parsed.items) == 2 and isinstance(first.parsed.next_cursor, str)
        second = list_tickets.sync_detailed(client=client, limit=2, tag="generated", cursor=first.parsed.next_cursor)
        assert second.status_code == 200 and len(second.parsed.items) == 1 and second.parsed.next_cursor is None
        assert {t.id for t in first.parsed.items + second.parsed.items} == {t.id for t in tickets}
        assert int(first.headers["RateLimit-Limit"]) > 0

        target = tickets[0]
        read = get_ticket.sync_detailed(target.id, client=client)
        etag = read.headers["ETag"]
        patched = update_ticket.sync_detailed(target.id, client=client, if_match=etag,
                                              body=TicketUpdate(status=TicketStatus.IN_PROGRESS, title="Renamed"))
        assert patched.status_code == 200, patched.content
        assert patched.parsed.status == TicketStatus.IN_PROGRESS and patched.parsed.version == target.version + 1
        assert patched.headers["ETag"] != etag
        stale = update_ticket.sync_detailed(target.id, client=client, if_match=etag,
                                            body=TicketUpdate(priority=TicketPriority.LOW))
        assert stale.status_code == 412 and isinstance(stale.parsed, Problem)
        assert stale.headers["ETag"] == patched.headers["ETag"]
        seen["stale_patch"] = stale.parsed.code
        unconditional = update_ticket.sync_detailed(target.id, client=client, if_match="*",
                                                    body=TicketUpdate(priority=TicketPriority.LOW))
        assert unconditional.status_code == 200 and unconditional.parsed.priority == TicketPriority.LOW

        comment = create_comment.sync_detailed(target.id, client=client, body=CommentCreate(body="From the SDK"))
        assert comment.status_code == 201, comment.content
        comments = list_comments.sync_detailed(target.id, client=client)
        assert comments.status_code == 200 and [c.body for c in comments.parsed.items] == ["From the SDK"]
    return seen


async def test_a_generated_client_runs_a_journey(stack, http, tmp_path):
    resp = await http.get("/openapi.json")
    assert resp.status == 200
    document = await resp.json()
    await asyncio.to_thread(generate, document, tmp_path)
    package = load(tmp_path)
    # Deliberate names, not mechanical ones (get__well_known_jwks_json, GetTicketsResponse200).
    api = tmp_path / PACKAGE / "api"
    assert (api / "tickets" / "create_ticket.py").exists() and (api / "invitations" / "accept_invitation.py").exists()
    models = {p.stem for p in (tmp_path / PACKAGE / "models").glob("*.py")}
    assert {"ticket", "ticket_page", "ticket_status", "ticket_priority", "problem", "member_page"} <= models
    assert not [m for m in models if "response_200" in m or m.startswith(("get_", "post_", "patch_"))], models
    assert package.AuthenticatedClient
    seen = await asyncio.to_thread(journey, stack.url, tmp_path)
    assert seen == {"signup_again": "email_taken", "stale_patch": "etag_mismatch"}


@pytest.fixture(autouse=True)
def _forget_generated_package():
    yield
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
