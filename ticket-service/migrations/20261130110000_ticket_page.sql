-- An unfiltered page of tickets (the list as agents and admins open it: no filter, any sort,
-- any cursor) in one statement, so that it costs one round trip instead of BEGIN + scope /
-- SELECT / COMMIT (those two extra round trips were a fifth of ticket-service's CPU per list page,
-- py-spy under load). Filtered lists keep the transaction path: a filter on a rare value must use
-- its own index, which one statically planned walk of the sort order could not.
--
-- The same guarantees as ticket_read (migration ticket_read_create_one_statement): SECURITY
-- INVOKER, so every row is read as ticket_app under the tenant_isolation policy; the scope is set
-- transaction-local before the query runs (PL/pgSQL runs one statement after the other); an
-- unknown sort returns nothing. One static statement per sort, each planned once per session;
-- with no cursor the row comparison against the infinities/extreme ids admits every row, so the
-- (org_id, key..., id) index is walked from its start.
-- migrate:up

CREATE FUNCTION ticket_page(p_org_id uuid, p_sort text, p_limit integer, p_after_rank smallint,
                            p_after_at timestamptz, p_after_id uuid)
    RETURNS TABLE (id uuid, org_id uuid, number bigint, title text, description text, status text,
                   priority text, priority_rank smallint, tags text[], requester_id uuid, assignee_id uuid,
                   created_at timestamptz, updated_at timestamptz, version integer, deleted_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('app.tenant_id', p_org_id::text, true);
    IF p_sort = '-created_at' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.created_at, t.id) < (coalesce(p_after_at, 'infinity'), coalesce(p_after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid))
              ORDER BY t.created_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'created_at' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.created_at, t.id) > (coalesce(p_after_at, '-infinity'), coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'::uuid))
              ORDER BY t.created_at, t.id
            LIMIT p_limit;
    ELSIF p_sort = '-updated_at' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) < (coalesce(p_after_at, 'infinity'), coalesce(p_after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid))
              ORDER BY t.updated_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'updated_at' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) > (coalesce(p_after_at, '-infinity'), coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'::uuid))
              ORDER BY t.updated_at, t.id
            LIMIT p_limit;
    ELSIF p_sort = '-priority' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) < (coalesce(p_after_rank, 32767::smallint), coalesce(p_after_at, 'infinity'),
                                                    coalesce(p_after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid))
              ORDER BY t.priority_rank DESC, t.created_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'priority' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) > (coalesce(p_after_rank, (-32768)::smallint), coalesce(p_after_at, '-infinity'),
                                                    coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'::uuid))
              ORDER BY t.priority_rank, t.created_at, t.id
            LIMIT p_limit;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) FROM PUBLIC;
DO $$
DECLARE
    app text := current_schema() || '_app';
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) TO %I', app);
END
$$;

-- migrate:down
DROP FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid);
