-- Accounts, sessions and the refresh-token chain of each session.
-- migrate:up
CREATE TABLE user_account (
    id                  uuid PRIMARY KEY,
    email               text NOT NULL,              -- trimmed and lowercased by the service
    name                text NOT NULL,
    password_hash       text NOT NULL,              -- argon2id, PHC string
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    password_changed_at timestamptz,
    CONSTRAINT user_account_email_lower CHECK (email = lower(email))
);
CREATE UNIQUE INDEX user_account_email_key ON user_account (email);

-- A login; its refresh tokens form a chain. Ending the session ends every token of it.
CREATE TABLE session (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES user_account (id) ON DELETE CASCADE,
    organization_id uuid,                            -- the organization its latest tokens are for
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,            -- absolute lifetime
    user_agent      text,
    ip              text,
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX session_user_active_idx ON session (user_id, created_at DESC, id DESC) WHERE revoked_at IS NULL;
CREATE INDEX session_org_active_idx ON session (organization_id) WHERE revoked_at IS NULL;

-- Only the sha256 of a refresh token is stored. When a token is spent, its successor's
-- plaintext is kept sealed with a key derived from the spent token itself, so that only a
-- holder of the spent token can recover it (the grace window for retried refreshes).
CREATE TABLE refresh_token (
    token_hash       bytea PRIMARY KEY,
    session_id       uuid NOT NULL REFERENCES session (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL,
    spent_at         timestamptz,
    successor_hash   bytea,
    successor_sealed bytea
);
CREATE INDEX refresh_token_session_idx ON refresh_token (session_id);

-- migrate:down
DROP TABLE refresh_token;
DROP TABLE session;
DROP TABLE user_account;
