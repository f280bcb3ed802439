-- Custom roles of an organization (API.md, "Permissions and custom roles"). A membership or
-- an invitation names its role: one of the four built-in names (fixed permission sets in
-- shared.permissions) or the name of a custom role of its organization.
-- migrate:up
CREATE TABLE custom_role (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 50),
    description     text NOT NULL DEFAULT '' CHECK (char_length(description) <= 500),
    permissions     text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Built-in names (and staff) are never a custom role's name, in any letter case.
    CHECK (lower(name) NOT IN ('owner', 'admin', 'agent', 'member', 'staff'))
);
CREATE UNIQUE INDEX custom_role_org_name_key ON custom_role (organization_id, lower(name));
CREATE INDEX custom_role_org_created_idx ON custom_role (organization_id, created_at, id);

ALTER TABLE membership DROP CONSTRAINT membership_role_check;
ALTER TABLE membership ADD CONSTRAINT membership_role_check CHECK (char_length(role) BETWEEN 1 AND 50);
ALTER TABLE invitation DROP CONSTRAINT invitation_role_check;
ALTER TABLE invitation ADD CONSTRAINT invitation_role_check CHECK (char_length(role) BETWEEN 1 AND 50);
-- "is this role still held" (DELETE .../roles/{id} answers 409 while it is).
CREATE INDEX membership_org_role_idx ON membership (organization_id, role);

-- migrate:down
DROP INDEX membership_org_role_idx;
DELETE FROM membership WHERE role NOT IN ('owner', 'admin', 'agent', 'member');
DELETE FROM invitation WHERE role NOT IN ('owner', 'admin', 'agent', 'member');
ALTER TABLE invitation DROP CONSTRAINT invitation_role_check;
ALTER TABLE invitation ADD CONSTRAINT invitation_role_check CHECK (role IN ('owner', 'admin', 'agent', 'member'));
ALTER TABLE membership DROP CONSTRAINT membership_role_check;
ALTER TABLE membership ADD CONSTRAINT membership_role_check CHECK (role IN ('owner', 'admin', 'agent', 'member'));
DROP TABLE custom_role;
