-- Email verification, password reset and the account security log (issue 13).
-- migrate:up
ALTER TABLE user_account ADD COLUMN email_verified_at timestamptz;

-- Single-use tokens sent by email; only their sha256 is stored. A verification token proves
-- the address it was sent to (`email`), which must still be the account's when it is used.
CREATE TABLE email_verification_token (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES user_account (id) ON DELETE CASCADE,
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_verification_token_user_idx ON email_verification_token (user_id);

-- At most one live reset token per user: a new request deletes the older ones.
CREATE TABLE password_reset_token (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES user_account (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_reset_token_user_idx ON password_reset_token (user_id);

-- The account's own security log (GET /v1/auth/security-events), written in the transaction
-- of the event it mirrors; purged after AUTH_SECURITY_EVENT_RETENTION_DAYS.
CREATE TABLE security_event (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES user_account (id) ON DELETE CASCADE,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    ip          text,
    user_agent  text
);
CREATE INDEX security_event_user_idx ON security_event (user_id, occurred_at DESC, id DESC);
CREATE INDEX security_event_occurred_idx ON security_event (occurred_at);

-- migrate:down
DROP TABLE security_event;
DROP TABLE password_reset_token;
DROP TABLE email_verification_token;
ALTER TABLE user_account DROP COLUMN email_verified_at;
