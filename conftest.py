"""Session-wide test setup shared by every suite: the test database (created, its roles set up
and every service's migrations applied once, before any test runs), a token factory with a
real JWKS endpoint, and a superuser pool to look at rows behind a service's back."""
import os

import asyncpg
import pytest

# The suites run with the shipped development secrets: say so, as `make run` does (production,
# the default, refuses them). Tests of the production check set ENVIRONMENT themselves.
os.environ["ENVIRONMENT"] = "development"

from shared.testing import TokenFactory, admin_dsn, prepare_test_database


@pytest.fixture(scope="session", autouse=True)
async def migrated_test_database():
    await prepare_test_database()


@pytest.fixture(scope="session")
async def token_factory():
    """Mints access tokens as auth-service does; ``token_factory.jwks_url`` serves its keys."""
    tf = TokenFactory()
    tf.jwks_url = await tf.serve_jwks()
    yield tf
    await tf.close()


@pytest.fixture(scope="session")
async def admin_db():
    """A superuser pool on the test database."""
    pool = await asyncpg.create_pool(admin_dsn(), min_size=1, max_size=2)
    yield pool
    await pool.close()
