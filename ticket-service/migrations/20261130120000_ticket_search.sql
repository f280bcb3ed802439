-- A search page (q, with or without filters, any sort and cursor) in one statement, so that it
-- costs one round trip instead of BEGIN + scope / SELECT / COMMIT, as ticket_page did for the
-- unfiltered list.
--
-- The same guarantees as ticket_page: SECURITY INVOKER, so every row is read as ticket_app under
-- the tenant_isolation policy; the scope is set transaction-local before anything runs (PL/pgSQL
-- runs one statement after the other). The page's ids come from ticket_search_page (migration
-- search_page), which reads the scope from that setting, never from an argument, and applies
-- the filters, sort order, cursor and limit; the rows are then read under the policy, the
-- filters tested again, in the order of the ids. One static statement, planned once per session.
-- migrate:up

CREATE FUNCTION ticket_search(p_org_id uuid, p_q text, p_sort text, p_limit integer, p_status text,
                              p_priority text, p_assignee_id uuid, p_requester_id uuid, p_tag text,
                              p_after_rank smallint, p_after_at timestamptz, p_after_id uuid, p_walk_rows integer)
    RETURNS TABLE (id uuid, org_id uuid, number bigint, title text, description text, status text,
                   priority text, priority_rank smallint, tags text[], requester_id uuid, assignee_id uuid,
                   created_at timestamptz, updated_at timestamptz, version integer, deleted_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    ids uuid[];
BEGIN
    PERFORM set_config('app.tenant_id', p_org_id::text, true);
    ids := ticket_search_page(q => p_q, sort => p_sort, lim => p_limit, status => p_status, priority => p_priority,
                              assignee_id => p_assignee_id, requester_id => p_requester_id, tag => p_tag,
                              after_rank => p_after_rank, after_at => p_after_at, after_id => p_after_id,
                              walk_rows => p_walk_rows);
    -- One primary-key probe per id, in the page's order. deleted_at is tested outside the probe,
    -- so that no partial (deleted_at IS NULL) index can stand in for the primary key: with an
    -- organization's statistics not yet gathered, the planner would otherwise take one of them and
    -- filter the whole organization on id.
    RETURN QUERY
        SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
        FROM unnest(ids) WITH ORDINALITY AS page(id, n)
        CROSS JOIN LATERAL (SELECT r.id, r.org_id, r.number, r.title, r.description, r.status, r.priority,
                                   r.priority_rank, r.tags, r.requester_id, r.assignee_id, r.created_at,
                                   r.updated_at, r.version, r.deleted_at
                            FROM ticket r WHERE r.id = page.id LIMIT 1) t
        WHERE t.deleted_at IS NULL
          AND (p_status IS NULL OR t.status = p_status)
          AND (p_priority IS NULL OR t.priority = p_priority)
          AND (p_assignee_id IS NULL OR t.assignee_id = p_assignee_id)
          AND (p_requester_id IS NULL OR t.requester_id = p_requester_id)
          AND (p_tag IS NULL OR p_tag = ANY(t.tags))
        ORDER BY page.n;
END
$$;

REVOKE ALL ON FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, smallint, timestamptz,
                                     uuid, integer) FROM PUBLIC;
DO $$
DECLARE
    app text := current_schema() || '_app';
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, '
                   'smallint, timestamptz, uuid, integer) TO %I', app);
END
$$;

-- migrate:down
DROP FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, smallint, timestamptz, uuid,
                            integer);
