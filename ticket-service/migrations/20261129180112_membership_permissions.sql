-- Custom roles (API.md, "Permissions and custom roles"): a membership's role may be any role
-- name of its organization, and what it grants is kept beside it (from the membership and
-- role events), so "who may be assigned" asks for a permission, not a role name. Rows written
-- before this migration have no permissions: their built-in role's set applies.
-- migrate:up
ALTER TABLE membership DROP CONSTRAINT membership_role_check;
ALTER TABLE membership ADD CONSTRAINT membership_role_check CHECK (char_length(role) BETWEEN 1 AND 50);
ALTER TABLE membership ADD COLUMN permissions text[];

-- migrate:down
ALTER TABLE membership DROP COLUMN permissions;
ALTER TABLE membership DROP CONSTRAINT membership_role_check;
ALTER TABLE membership ADD CONSTRAINT membership_role_check CHECK (role IN ('member', 'agent', 'admin', 'owner'))
    NOT VALID;
