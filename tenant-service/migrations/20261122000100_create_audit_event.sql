-- The audit log, filled by the audit consumer from the event bus. Append-only: the
-- service's role may insert and read, never update or delete.
-- migrate:up
CREATE TABLE audit_event (
    id            uuid PRIMARY KEY,          -- the event id: a redelivery cannot add a second row
    tenant_id     uuid,
    type          text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    actor_user_id uuid,
    subject_type  text NOT NULL,
    subject_id    text NOT NULL,
    request_id    text,
    envelope      jsonb NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_event_tenant_time_idx ON audit_event (tenant_id, occurred_at DESC, id DESC);

ALTER TABLE audit_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_event FORCE ROW LEVEL SECURITY;
-- Reads see only the organization set for the transaction; a missing setting matches nothing.
CREATE POLICY audit_event_read ON audit_event FOR SELECT
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
-- The consumer records every organization's events.
CREATE POLICY audit_event_append ON audit_event FOR INSERT WITH CHECK (true);
REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM tenant_app;

-- migrate:down
DROP TABLE audit_event;
