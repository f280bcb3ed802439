-- The audit log API filters by type, actor and subject within one organization, newest first:
-- each filter gets an index in that order, so a page is an index walk that stops at the limit.
-- migrate:up
CREATE INDEX audit_event_tenant_type_time_idx ON audit_event (tenant_id, type, occurred_at DESC, id DESC);
CREATE INDEX audit_event_tenant_actor_time_idx ON audit_event (tenant_id, actor_user_id, occurred_at DESC, id DESC);
CREATE INDEX audit_event_tenant_subject_time_idx ON audit_event (tenant_id, subject_id, occurred_at DESC, id DESC);

-- migrate:down
DROP INDEX audit_event_tenant_subject_time_idx;
DROP INDEX audit_event_tenant_actor_time_idx;
DROP INDEX audit_event_tenant_type_time_idx;
