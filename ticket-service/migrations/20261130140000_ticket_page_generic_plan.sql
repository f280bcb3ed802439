-- ticket_page keeps one plan per session, and that plan walks the index from the cursor (issue 16).
--
-- PL/pgSQL caches each statement's plan, but under plan_cache_mode = auto it compares the generic
-- plan's estimate with the custom plans' after five calls. With the table's statistics gathered,
-- the generic estimate of `ORDER BY ... LIMIT p_limit` (an unknown limit counts as a tenth of the
-- organization's rows) is far above a custom plan's, so PostgreSQL planned the page's statement
-- again on every call: 78 us a call instead of 20 (a loop of 2,000 calls on 5,000 tickets, analyzed),
-- about 110 us of PostgreSQL's CPU per list request under `make bench`. Without statistics (a fresh
-- database, as `make bench` used to measure) the two estimates were close and the generic plan was
-- kept, which hid the cost.
--
-- The generic plan is now forced. For it to be the plan wanted, the cursor's bounds are computed
-- first into variables: a row comparison against coalesce(param, ...) is no index condition of a
-- generic plan (it becomes a filter, and a page deep in the order would read every row before it:
-- page 1,001 of a million tickets cost 6 ms of PostgreSQL's CPU that way), against plain values it
-- is one. jit is off: a page read never pays back a compilation.
-- migrate:up

CREATE OR REPLACE FUNCTION ticket_page(p_org_id uuid, p_sort text, p_limit integer, p_after_rank smallint,
                            p_after_at timestamptz, p_after_id uuid)
    RETURNS TABLE (id uuid, org_id uuid, number bigint, title text, description text, status text,
                   priority text, priority_rank smallint, tags text[], requester_id uuid, assignee_id uuid,
                   created_at timestamptz, updated_at timestamptz, version integer, deleted_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET plan_cache_mode = force_generic_plan SET jit = off
AS $$
DECLARE
    -- The cursor's bounds, with no cursor the ends of the order: plain values, so that the row
    -- comparison is an index condition of the generic plan (a coalesce() there is not one, and
    -- the scan would start from the first row of the order every time).
    at_hi constant timestamptz := coalesce(p_after_at, 'infinity');
    at_lo constant timestamptz := coalesce(p_after_at, '-infinity');
    id_hi constant uuid := coalesce(p_after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff');
    id_lo constant uuid := coalesce(p_after_id, '00000000-0000-0000-0000-000000000000');
    rank_hi constant smallint := coalesce(p_after_rank, 32767);
    rank_lo constant smallint := coalesce(p_after_rank, -32768);
BEGIN
    PERFORM set_config('app.tenant_id', p_org_id::text, true);
    IF p_sort = '-created_at' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.created_at, t.id) < (at_hi, id_hi)
              ORDER BY t.created_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'created_at' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.created_at, t.id) > (at_lo, id_lo)
              ORDER BY t.created_at, t.id
            LIMIT p_limit;
    ELSIF p_sort = '-updated_at' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) < (at_hi, id_hi)
              ORDER BY t.updated_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'updated_at' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) > (at_lo, id_lo)
              ORDER BY t.updated_at, t.id
            LIMIT p_limit;
    ELSIF p_sort = '-priority' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) < (rank_hi, at_hi, id_hi)
              ORDER BY t.priority_rank DESC, t.created_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'priority' THEN
        RETURN QUERY
            SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) > (rank_lo, at_lo, id_lo)
              ORDER BY t.priority_rank, t.created_at, t.id
            LIMIT p_limit;
    END IF;
END
$$;


-- migrate:down

CREATE OR REPLACE FUNCTION ticket_page(p_org_id uuid, p_sort text, p_limit integer, p_after_rank smallint,
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
