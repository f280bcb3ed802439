-- What tenant-service last answered about a user's memberships, kept for sign-ins
-- (auth_service/tenants/cache.py: when a sign-in may use it instead of asking again).
-- migrate:up
CREATE TABLE membership_cache (
    user_id     uuid PRIMARY KEY REFERENCES user_account (id) ON DELETE CASCADE,
    memberships jsonb NOT NULL,    -- [{organization_id, role, joined_at, permissions}], oldest first
    mark_keys   text[] NOT NULL,   -- the revocation marks (revocation_mark.key) that make it stale
    as_of_ms    bigint NOT NULL    -- PostgreSQL's clock (ms) taken before tenant-service was asked
);

-- migrate:down
DROP TABLE membership_cache;
