"""Creating an invitation writes the invitee's email in the same transaction (the mail sender
delivers it; auth-service/tests/account/test_journey.py follows one through a real SMTP server)."""
import uuid


async def test_an_invitation_commits_its_email_with_the_accept_link(client, world, admin_db, settings):
    org = await world.org()
    email = f"invitee-{uuid.uuid4().hex[:10]}@example.com"
    resp = await client.post(f"/v1/organizations/{org.id}/invitations", json={"email": email, "role": "agent"},
                             headers=org["admin"].auth)
    assert resp.status == 201
    token = (await resp.json())["token"]
    [row] = await admin_db.fetch("SELECT template, subject, text_body, html_body, message_id, sent_at "
                                 "FROM tenant.mail_outbox WHERE recipient = $1", email)
    link = f"{settings.public_app_url}/accept-invitation?token={token}"
    assert row["template"] == "invitation" and row["sent_at"] is None
    assert link in row["text_body"] and link in row["html_body"] and "as agent" in row["text_body"]
    assert row["message_id"].startswith("<") and row["message_id"].endswith(">")


async def test_a_refused_invitation_sends_nothing(client, world, admin_db):
    org = await world.org()
    member_email = org["agent"].email  # already a member: 409, rolled back with its email
    resp = await client.post(f"/v1/organizations/{org.id}/invitations", json={"email": member_email, "role": "agent"},
                             headers=org["admin"].auth)
    assert resp.status == 409
    assert await admin_db.fetchval("SELECT count(*) FROM tenant.mail_outbox WHERE recipient = $1", member_email) == 0
