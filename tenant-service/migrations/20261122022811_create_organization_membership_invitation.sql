-- Organizations, their members and invitations, and the user profiles tenant-service keeps
-- in step with auth-service (user.registered) so members can be listed by email and name.
-- migrate:up
CREATE TABLE organization (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    slug            text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    -- Set only by the signup path (POST /internal/organizations): makes that call idempotent
    -- per user, so a retried signup finds the organization it already created.
    signup_user_id  uuid UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at      timestamptz
);
-- A deleted organization frees its slug.
CREATE UNIQUE INDEX organization_slug_live_key ON organization (slug) WHERE deleted_at IS NULL;

CREATE TABLE user_profile (
    user_id    uuid PRIMARY KEY,
    email      text NOT NULL CHECK (email = lower(btrim(email))),
    name       text NOT NULL,
    -- occurred_at of the newest change applied: an older, redelivered event never wins.
    updated_at timestamptz NOT NULL
);
CREATE INDEX user_profile_email_idx ON user_profile (email);

CREATE TABLE membership (
    organization_id uuid NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL,
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'agent', 'member')),
    joined_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (organization_id, user_id)
);
-- "my organizations", oldest first (login picks the oldest membership).
CREATE INDEX membership_user_idx ON membership (user_id, joined_at, organization_id);
CREATE INDEX membership_org_joined_idx ON membership (organization_id, joined_at, user_id);

CREATE TABLE invitation (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    email           text NOT NULL CHECK (email = lower(btrim(email))),
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'agent', 'member')),
    -- sha256 of the 256-bit random token; the token itself is shown once and never stored.
    token_hash      bytea NOT NULL UNIQUE,
    invited_by      uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    accepted_by     uuid,
    revoked_at      timestamptz,
    CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
CREATE INDEX invitation_pending_idx ON invitation (organization_id, created_at DESC, id DESC)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- migrate:down
DROP TABLE invitation;
DROP TABLE membership;
DROP TABLE user_profile;
DROP TABLE organization;
