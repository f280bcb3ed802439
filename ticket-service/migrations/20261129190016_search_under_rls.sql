-- Full-text search that can use its GIN index under row-level security.
--
-- Under a policy, PostgreSQL only lets leakproof operators run before the policy's condition,
-- and `@@` is not leakproof: `search @@ q` can never be an index condition for ticket_app, so a
-- rare term scanned every ticket of the organization. ticket_search_ids() runs the match as
-- <schema>_definer (SECURITY DEFINER; a no-login role made by shared.dbsetup), for which a
-- SELECT-only policy is always true, so the planner may use ticket_search_idx. The function
-- applies the organization itself, from the same transaction setting the policies read, and
-- hides deleted organizations as they do. It returns ids only, and the caller reads the rows in
-- a second statement under the ordinary policy: even a wrong id could not bring another
-- organization's row back. The definer can read four columns of ticket and nothing else.
-- migrate:up

CREATE FUNCTION ticket_search_ids(q text, max_rows integer) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
    SELECT t.id
    FROM ticket t
    WHERE t.org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
      AND NOT EXISTS (SELECT 1 FROM deleted_organization d
                      WHERE d.org_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
      AND t.deleted_at IS NULL
      AND t.search @@ websearch_to_tsquery('english'::regconfig, q)
    LIMIT max_rows
$$;
REVOKE ALL ON FUNCTION ticket_search_ids(text, integer) FROM PUBLIC;

DO $$
DECLARE
    definer text := current_schema() || '_definer';
    app text := current_schema() || '_app';
BEGIN
    EXECUTE format('GRANT SELECT (id, org_id, deleted_at, search) ON ticket TO %I', definer);
    EXECUTE format('GRANT SELECT (org_id) ON deleted_organization TO %I', definer);
    EXECUTE format('CREATE POLICY search_definer ON ticket FOR SELECT TO %I USING (true)', definer);
    -- Granted while the owner still owns the function; the grant moves with it.
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_search_ids(text, integer) TO %I', app);
    EXECUTE format('ALTER FUNCTION ticket_search_ids(text, integer) OWNER TO %I', definer);
END
$$;

-- migrate:down
DROP POLICY search_definer ON ticket;
DO $$
DECLARE
    definer text := current_schema() || '_definer';
BEGIN
    EXECUTE format('REVOKE SELECT (id, org_id, deleted_at, search) ON ticket FROM %I', definer);
    EXECUTE format('REVOKE SELECT (org_id) ON deleted_organization FROM %I', definer);
    -- The owner is a member of the definer role without its privileges (NOINHERIT): it drops
    -- the function as that role.
    EXECUTE format('SET LOCAL ROLE %I', definer);
    DROP FUNCTION ticket_search_ids(text, integer);
    RESET ROLE;
END
$$;
