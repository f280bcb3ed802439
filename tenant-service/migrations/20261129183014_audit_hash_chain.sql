-- Each organization's audit events form a hash chain (API.md: audit-events/verify).
--
-- audit_chain holds, per organization, the head of its chain (the newest event's position and
-- hash, locked by the audit consumer while it appends, so replicas append one at a time per
-- organization) and the retention checkpoint: the position and hash of the last event purged,
-- from which verification of what remains starts.
--
-- audit_event.chain_seq / prev_hash / hash: the event's position (1, 2, ...), the hash of the
-- event before it ('' for the first) and its own hash
--     sha256_hex(prev_hash || '\n' || chain_seq || '\n' || envelope::text)
-- (tenant_service.audit.chain). Events recorded before this migration, and events of no
-- organization, stay outside any chain (chain_seq NULL).
-- migrate:up
CREATE TABLE audit_chain (
    tenant_id       uuid PRIMARY KEY,
    last_seq        bigint NOT NULL DEFAULT 0,
    last_hash       text NOT NULL DEFAULT '',
    last_event_id   uuid,
    checkpoint_seq  bigint NOT NULL DEFAULT 0,
    checkpoint_hash text NOT NULL DEFAULT '',
    checkpoint_at   timestamptz,
    retention_days  integer CHECK (retention_days > 0),  -- NULL: the AUDIT_RETENTION_DAYS default
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Hashes and positions only, read and advanced for any organization by the audit consumer.
REVOKE DELETE, TRUNCATE ON audit_chain FROM tenant_app;

-- Instant: nullable columns without a default rewrite nothing.
ALTER TABLE audit_event ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash text, ADD COLUMN hash text;
-- Walks a chain in order; unique so that two appends can never take one position.
-- NOTE: built without CONCURRENTLY (the runner runs each migration in a transaction): on a large
-- audit_event this blocks writes to it while it builds.
CREATE UNIQUE INDEX audit_event_chain_idx ON audit_event (tenant_id, chain_seq) WHERE chain_seq IS NOT NULL;

-- Retention purges with the owner's rights through audit_purge() only: the app role still
-- cannot delete an audit event itself.
CREATE POLICY audit_event_purge ON audit_event FOR DELETE
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- Removes the organization's chained events at positions up to p_upto (a prefix of the chain)
-- and moves its checkpoint there: p_hash must be the hash stored at p_upto, checked here under
-- the chain head's lock. Returns how many events were removed.
CREATE FUNCTION audit_purge(p_tenant uuid, p_upto bigint, p_hash text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    head audit_chain%ROWTYPE;
    stored text;
    removed bigint;
BEGIN
    SELECT * INTO head FROM audit_chain WHERE tenant_id = p_tenant FOR UPDATE;
    IF NOT FOUND OR p_upto <= head.checkpoint_seq OR p_upto > head.last_seq THEN
        RETURN 0;
    END IF;
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    SELECT hash INTO stored FROM audit_event WHERE tenant_id = p_tenant AND chain_seq = p_upto;
    IF stored IS DISTINCT FROM p_hash THEN
        RAISE EXCEPTION 'audit chain of % changed at position %', p_tenant, p_upto USING ERRCODE = '40001';
    END IF;
    DELETE FROM audit_event WHERE tenant_id = p_tenant AND chain_seq IS NOT NULL AND chain_seq <= p_upto;
    GET DIAGNOSTICS removed = ROW_COUNT;
    UPDATE audit_chain SET checkpoint_seq = p_upto, checkpoint_hash = p_hash, checkpoint_at = now(),
                           updated_at = now()
     WHERE tenant_id = p_tenant;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION audit_purge(uuid, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_purge(uuid, bigint, text) TO tenant_app;

-- migrate:down
DROP FUNCTION audit_purge(uuid, bigint, text);
DROP POLICY audit_event_purge ON audit_event;
DROP INDEX audit_event_chain_idx;
ALTER TABLE audit_event DROP COLUMN hash, DROP COLUMN prev_hash, DROP COLUMN chain_seq;
DROP TABLE audit_chain;
