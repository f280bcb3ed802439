"""DELETE /v1/tickets/{id} and POST /v1/tickets/{id}/restore (admin and owner only)."""
import uuid


async def test_soft_delete_hides_ticket_everywhere_and_restore_brings_it_back(api, org):
    admin, agent = await org.user("admin"), await org.user("agent")
    t = await api.create_ticket(agent)
    url = f"/v1/tickets/{t['id']}"
    resp = await api.client.delete(url, headers=admin.auth)
    assert resp.status == 204
    await api.problem(await api.get(admin, t["id"]), 404)
    await api.problem(await api.patch(admin, {**t, "version": 2}, {"title": "x"}), 404)
    await api.problem(await api.client.post(f"{url}/comments", json={"body": "hi"}, headers=admin.auth), 404)
    await api.problem(await api.client.get(f"{url}/comments", headers=admin.auth), 404)
    await api.problem(await api.client.delete(url, headers=admin.auth), 404)
    assert t["id"] not in {x["id"] for x in (await api.list(admin))["items"]}
    [deleted] = await api.events_of(t["id"], "ticket.deleted")
    assert deleted["data"]["id"] == t["id"] and deleted["actor"]["user_id"] == str(admin.id)

    resp = await api.client.post(f"{url}/restore", headers=admin.auth)
    assert resp.status == 200
    restored = await resp.json()
    assert resp.headers["ETag"] == f'"{restored["version"]}"' and restored["version"] == 3
    assert restored["number"] == t["number"]
    assert (await api.get(agent, t["id"])).status == 200
    [event] = await api.events_of(t["id"], "ticket.restored")
    assert event["data"] == restored
    # Restoring a live ticket is a conflict; an unknown one is 404.
    await api.problem(await api.client.post(f"{url}/restore", headers=admin.auth), 409)
    await api.problem(await api.client.post(f"/v1/tickets/{uuid.uuid4()}/restore", headers=admin.auth), 404)


async def test_only_admin_and_owner_delete_and_restore(api, org):
    member, agent, owner = await org.user("member"), await org.user("agent"), await org.user("owner")
    t = await api.create_ticket(member)
    url = f"/v1/tickets/{t['id']}"
    for user in (member, agent):
        await api.problem(await api.client.delete(url, headers=user.auth), 403)
    assert (await api.client.delete(url, headers=owner.auth)).status == 204
    for user in (member, agent):
        await api.problem(await api.client.post(f"{url}/restore", headers=user.auth), 403)
    assert (await api.client.post(f"{url}/restore", headers=owner.auth)).status == 200


async def test_delete_honours_if_match_when_sent(api, org):
    admin = await org.user("admin")
    t = await api.create_ticket(admin)
    url = f"/v1/tickets/{t['id']}"
    await api.problem(await api.client.delete(url, headers={**admin.auth, "If-Match": '"5"'}), 412)
    assert (await api.client.delete(url, headers={**admin.auth, "If-Match": '"1"'})).status == 204


async def test_another_organizations_ticket_cannot_be_deleted(api, org, other_org):
    a, b = await org.user("admin"), await other_org.user("owner")
    t = await api.create_ticket(a)
    await api.problem(await api.client.delete(f"/v1/tickets/{t['id']}", headers=b.auth), 404)
    await api.problem(await api.client.post(f"/v1/tickets/{t['id']}/restore", headers=b.auth), 404)
    assert (await api.get(a, t["id"])).status == 200
