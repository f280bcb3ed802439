-- Tickets, comments, per-organization numbering, idempotency keys, and the local read model
-- of memberships and deleted organizations fed by tenant-service's events.
--
-- Isolation lives here, not only in the code: every table carries org_id and a row-level
-- security policy (ENABLE + FORCE, so even the owner is subject to it) that restricts each
-- statement to the organization set for the current transaction with
-- set_config('app.tenant_id', ..., true). A missing or empty setting matches nothing.
-- ticket_app (the service's login role) owns none of these tables and has no BYPASSRLS.
-- migrate:up

-- Organizations tenant-service reported deleted: their tickets disappear for everyone.
CREATE TABLE deleted_organization (
    org_id     uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL
);

-- Who may be assigned: memberships as last reported by tenant-service. A removed member keeps
-- its row (active = false) so that an older event delivered late cannot bring it back;
-- event_at is the occurred_at of the newest event applied to the row.
CREATE TABLE membership (
    org_id   uuid NOT NULL,
    user_id  uuid NOT NULL,
    role     text NOT NULL CHECK (role IN ('member', 'agent', 'admin', 'owner')),
    active   boolean NOT NULL,
    event_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

-- One row per organization; INSERT ... ON CONFLICT DO UPDATE ... RETURNING hands out the next
-- number and holds the row lock until commit, so concurrent creations never share a number.
CREATE TABLE ticket_counter (
    org_id      uuid PRIMARY KEY,
    last_number bigint NOT NULL
);

CREATE TABLE ticket (
    id            uuid NOT NULL,
    org_id        uuid NOT NULL,
    number        bigint NOT NULL,
    title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '' CHECK (char_length(description) <= 20000),
    status        text NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'in_progress', 'pending', 'resolved', 'closed')),
    priority      text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    -- Sorting by priority needs low < normal < high < urgent, not alphabetical order.
    priority_rank smallint GENERATED ALWAYS AS (
                      CASE priority WHEN 'low' THEN 1 WHEN 'normal' THEN 2 WHEN 'high' THEN 3 ELSE 4 END
                  ) STORED,
    tags          text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 10),
    requester_id  uuid NOT NULL,
    assignee_id   uuid,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    version       integer NOT NULL DEFAULT 1,
    deleted_at    timestamptz,
    search        tsvector GENERATED ALWAYS AS (
                      setweight(to_tsvector('english'::regconfig, title), 'A')
                      || setweight(to_tsvector('english'::regconfig, description), 'B')
                  ) STORED,
    -- org_id first: every statement is filtered on it by the policy, so a lookup by id is one
    -- index probe, and comments can reference (org_id, id) so they cannot cross organizations.
    PRIMARY KEY (org_id, id),
    CONSTRAINT ticket_org_number_key UNIQUE (org_id, number)
);

-- Keyset pagination: one index per sort key, (org_id, key..., id), so that a page 1,000 pages
-- deep is one index descent like the first. Both directions use the same index (backward scan).
CREATE INDEX ticket_created_idx ON ticket (org_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX ticket_updated_idx ON ticket (org_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX ticket_priority_idx ON ticket (org_id, priority_rank, created_at, id) WHERE deleted_at IS NULL;
-- Members only ever list their own tickets.
CREATE INDEX ticket_requester_created_idx ON ticket (org_id, requester_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX ticket_requester_updated_idx ON ticket (org_id, requester_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX ticket_requester_priority_idx ON ticket (org_id, requester_id, priority_rank, created_at, id)
    WHERE deleted_at IS NULL;
-- "Assigned to me", the agents' everyday view.
CREATE INDEX ticket_assignee_created_idx ON ticket (org_id, assignee_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX ticket_search_idx ON ticket USING gin (search);

CREATE TABLE ticket_comment (
    id         uuid PRIMARY KEY,
    org_id     uuid NOT NULL,
    ticket_id  uuid NOT NULL,
    author_id  uuid NOT NULL,
    body       text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 20000),
    internal   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (org_id, ticket_id) REFERENCES ticket (org_id, id)
);
CREATE INDEX ticket_comment_list_idx ON ticket_comment (org_id, ticket_id, created_at, id);

-- Idempotency-Key replays of POST /v1/tickets, scoped per (organization, user, key). The row
-- is inserted first, in the ticket's own transaction: a concurrent request with the same key
-- waits on it and then replays the stored response.
CREATE TABLE idempotency_key (
    org_id          uuid NOT NULL,
    user_id         uuid NOT NULL,
    key             text NOT NULL,
    request_hash    text NOT NULL,
    response_status smallint,
    response_body   text,
    response_etag   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id, key)
);

ALTER TABLE deleted_organization ENABLE ROW LEVEL SECURITY;
ALTER TABLE deleted_organization FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON deleted_organization
    USING (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE membership ENABLE ROW LEVEL SECURITY;
ALTER TABLE membership FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON membership
    USING (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- The tables below also hide a deleted organization's rows. The NOT EXISTS does not depend on
-- the row, so PostgreSQL evaluates it once per statement (an InitPlan), not once per row.
ALTER TABLE ticket_counter ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_counter FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ticket_counter
    USING (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
           AND NOT EXISTS (SELECT 1 FROM deleted_organization d
                           WHERE d.org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                AND NOT EXISTS (SELECT 1 FROM deleted_organization d
                                WHERE d.org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid));

ALTER TABLE ticket ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ticket
    USING (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
           AND NOT EXISTS (SELECT 1 FROM deleted_organization d
                           WHERE d.org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                AND NOT EXISTS (SELECT 1 FROM deleted_organization d
                                WHERE d.org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid));

ALTER TABLE ticket_comment ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_comment FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ticket_comment
    USING (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
           AND NOT EXISTS (SELECT 1 FROM deleted_organization d
                           WHERE d.org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                AND NOT EXISTS (SELECT 1 FROM deleted_organization d
                                WHERE d.org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid));

ALTER TABLE idempotency_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_key FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_key
    USING (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- migrate:down
DROP TABLE idempotency_key;
DROP TABLE ticket_comment;
DROP TABLE ticket;
DROP TABLE ticket_counter;
DROP TABLE membership;
DROP TABLE deleted_organization;
