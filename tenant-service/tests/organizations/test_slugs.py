from tenant_service.organizations import slugs


def test_derive():
    assert slugs.derive("Acme Café, Inc.") == "acme-cafe-inc"
    assert slugs.derive("  --Hello   World--  ") == "hello-world"
    assert slugs.derive("日本") == "org"
    assert len(slugs.derive("x" * 300)) == 50
    assert all(slugs.is_valid(slugs.derive(n)) for n in ("A", "a-b", "Ω mega", "-" * 80 + "z"))


def test_candidates_are_valid_and_distinct():
    out = list(slugs.candidates("acme"))
    assert out[:3] == ["acme", "acme-2", "acme-3"]
    assert len(set(out)) == len(out) and all(slugs.is_valid(c) for c in out)


def test_is_valid():
    assert slugs.is_valid("a") and slugs.is_valid("a-1-b")
    for bad in ("", "A", "-a", "a-", "a_b", "a b", "é", "a" * 64):
        assert not slugs.is_valid(bad)
