-- API keys of organizations (issue 12) and platform staff.
-- migrate:up
-- Only the sha256 of a key is stored; ``prefix`` (its first 12 characters) names it in lists
-- and logs. ``permissions`` is a subset of its creator's at creation.
CREATE TABLE api_key (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    name            text NOT NULL,
    prefix          text NOT NULL,
    key_hash        bytea NOT NULL,
    permissions     text[] NOT NULL,
    created_by      uuid NOT NULL REFERENCES user_account (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz,
    last_used_at    timestamptz,
    revoked_at      timestamptz
);
CREATE UNIQUE INDEX api_key_hash_key ON api_key (key_hash);
CREATE INDEX api_key_org_live_idx ON api_key (organization_id, created_at DESC, id DESC) WHERE revoked_at IS NULL;

-- Platform staff: granted and revoked only from the command line (python -m auth_service staff).
CREATE TABLE staff_grant (
    user_id    uuid PRIMARY KEY REFERENCES user_account (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL
);

-- migrate:down
DROP TABLE staff_grant;
DROP TABLE api_key;
