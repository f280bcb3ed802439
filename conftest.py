"""Session-wide test setup: the test database is created, its roles set up and every
service's migrations applied once, before any test runs."""
import pytest

from shared.testing import prepare_test_database


@pytest.fixture(scope="session", autouse=True)
async def migrated_test_database():
    await prepare_test_database()
