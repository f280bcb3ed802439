"""Every end-to-end journey (tests/e2e/test_journeys.py), collected here so it runs against
the stack of this package's conftest: pools through PgBouncer in transaction mode, row-level
security set per transaction, no server-side statement cache."""
import subprocess

from tests.e2e.test_journeys import *  # noqa: F401,F403  (the same tests, this package's fixtures)


def test_the_services_really_went_through_pgbouncer(stack):
    # PgBouncer's admin console lists the pools it served: one per application role.
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(stack.pgbouncer.port), "-U", "pgbouncer",
                          "-At", "-F", " ", "-c", "SHOW POOLS", "pgbouncer"],
                         capture_output=True, text=True, check=True).stdout
    pools = {tuple(line.split()[:2]) for line in out.splitlines() if line.strip()}
    for role in ("auth_app", "tenant_app", "ticket_app"):
        assert (stack.database, role) in pools, out
