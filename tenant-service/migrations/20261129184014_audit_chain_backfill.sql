-- Chains the audit events recorded before the hash chain existed, so an auditor can verify the
-- whole history: for every organization that has no chain yet, its stored events in
-- (occurred_at, id) order become positions 1..n, with the formula of tenant_service.audit.chain
-- (sha256_hex(prev_hash || '\n' || chain_seq || '\n' || envelope::text)).
--
-- Organizations whose chain already started (the new consumer ran before this migration) keep
-- their unchained older events outside it: rehashing a live chain would rewrite its evidence.
--
-- NOTE for large tables: this rewrites every unchained row of audit_event in one transaction and
-- takes ACCESS EXCLUSIVE on it for the ALTERs (writes and reads of the audit log wait). Run it
-- before the new audit consumer starts.
-- migrate:up
CREATE FUNCTION audit_chain_backfill() RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    r record;
    cur uuid;
    seq bigint := 0;
    prev text := '';
    last_id uuid;
    chained bigint := 0;
BEGIN
    FOR r IN
        SELECT e.id, e.tenant_id, e.envelope::text AS line
          FROM audit_event e
         WHERE e.chain_seq IS NULL AND e.tenant_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.tenant_id = e.tenant_id AND c.last_seq > 0)
         ORDER BY e.tenant_id, e.occurred_at, e.id
    LOOP
        IF cur IS DISTINCT FROM r.tenant_id THEN
            IF cur IS NOT NULL THEN
                INSERT INTO audit_chain (tenant_id, last_seq, last_hash, last_event_id) VALUES (cur, seq, prev, last_id)
                ON CONFLICT (tenant_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash,
                                                      last_event_id = EXCLUDED.last_event_id, updated_at = now();
            END IF;
            cur := r.tenant_id;
            seq := 0;
            prev := '';
        END IF;
        seq := seq + 1;
        UPDATE audit_event
           SET chain_seq = seq, prev_hash = prev,
               hash = encode(sha256(convert_to(prev || E'\n' || seq::text || E'\n' || r.line, 'UTF8')), 'hex')
         WHERE id = r.id
        RETURNING hash INTO prev;
        last_id := r.id;
        chained := chained + 1;
    END LOOP;
    IF cur IS NOT NULL THEN
        INSERT INTO audit_chain (tenant_id, last_seq, last_hash, last_event_id) VALUES (cur, seq, prev, last_id)
        ON CONFLICT (tenant_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash,
                                              last_event_id = EXCLUDED.last_event_id, updated_at = now();
    END IF;
    RETURN chained;
END
$$;
REVOKE ALL ON FUNCTION audit_chain_backfill() FROM PUBLIC;

-- The owner reads and rewrites every organization's rows here (no app.tenant_id scope).
ALTER TABLE audit_event NO FORCE ROW LEVEL SECURITY;
SELECT audit_chain_backfill();
ALTER TABLE audit_event FORCE ROW LEVEL SECURITY;

-- migrate:down
DROP FUNCTION audit_chain_backfill();
