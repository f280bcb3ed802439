"""The permission catalogue, the built-in sets (API.md's table, row by row) and the grant rule."""
import pytest

from shared import permissions as P

ROW_ALL = {"tickets:create", "tickets:read_own", "comments:create", "members:read"}
ROW_AGENT = {"tickets:read_all", "tickets:triage", "comments:internal"}
ROW_ADMIN = {"tickets:delete", "members:invite", "members:manage", "roles:manage", "api_keys:manage", "audit:read",
             "organization:manage"}
ROW_OWNER = {"organization:delete", "admins:manage"}


def test_catalogue_names_are_unique_described_and_well_formed():
    names = [p.name for p in P.CATALOGUE]
    assert len(names) == len(set(names)) == len(P.NAMES) == 16
    assert set(names) == ROW_ALL | ROW_AGENT | ROW_ADMIN | ROW_OWNER
    for p in P.CATALOGUE:
        area, _, action = p.name.partition(":")
        assert area and action and p.name == p.name.lower() and p.description.endswith(".")


def test_builtin_sets_are_the_contract_table():
    assert P.BUILTIN_ROLES == {"member": ROW_ALL, "agent": ROW_ALL | ROW_AGENT,
                               "admin": ROW_ALL | ROW_AGENT | ROW_ADMIN,
                               "owner": ROW_ALL | ROW_AGENT | ROW_ADMIN | ROW_OWNER}
    assert P.builtin_permissions("staff") == P.STAFF_PERMISSIONS
    assert P.builtin_permissions("Triage") is None
    assert P.unknown(["tickets:read_all", "tickets:fly", "x"]) == ["tickets:fly", "x"]


@pytest.mark.parametrize("actor,role,allowed", [
    ("owner", "owner", True), ("owner", "admin", True), ("owner", "member", True),
    ("admin", "agent", True), ("admin", "member", True), ("admin", "admin", False), ("admin", "owner", False),
    ("agent", "member", True), ("agent", "agent", True), ("agent", "admin", False),
    ("member", "agent", False),
])
def test_the_grant_rule_on_builtin_roles(actor, role, allowed):
    """The rule itself; whether one may grant at all is members:manage / members:invite."""
    assert P.may_hand_out(P.BUILTIN_ROLES[actor], P.BUILTIN_ROLES[role]) is allowed


def test_the_grant_rule_on_custom_sets():
    admin = P.BUILTIN_ROLES["admin"]
    assert P.may_hand_out(admin, frozenset({"tickets:read_all", "audit:read"}))        # not admin level
    assert not P.may_hand_out(admin, frozenset({"members:invite"}))                    # admin level
    assert not P.may_hand_out(frozenset({"members:manage", "admins:manage"}), frozenset({"tickets:delete"}))
    assert P.may_hand_out(frozenset({"members:manage", "admins:manage"}), frozenset({"members:manage"}))
    assert P.ADMIN_LEVEL <= P.BUILTIN_ROLES["owner"] and P.ADMIN_LEVEL.isdisjoint(P.BUILTIN_ROLES["agent"])
