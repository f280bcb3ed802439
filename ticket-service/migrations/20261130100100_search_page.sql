-- Search answers one page, not "every match, then filter": ticket_search_page() returns the ids
-- of the page itself (filters, sort order, keyset cursor and limit applied inside), found by
-- whichever index serves this term:
--
-- 1. Walks: the organization's rows in sort order from the cursor on (the list's own
--    (org_id, key..., id) index), each tested against the filters and `search @@ q`. A common term
--    fills the page within a few dozen rows, whatever the size of the organization. A walk that
--    comes up short tells the density of matches: the next walk is sized for it, up to
--    walk_rows rows.
-- 2. When the first walk finds no match, or the walks cannot fill the page within walk_rows
--    rows, the matches are rare: they are read as the planner chooses for these filters (for
--    a rare term, ticket_org_search_idx: the organization's and the term's posting lists
--    intersected in the index; for a member's own tickets, the requester index), sorted, and
--    the page cut. A rare term, or one matching nothing, costs one short walk and its matches,
--    not the organization's size.
--
-- The price of deciding by walking: matches in about 1 to 5 % of a large organization's rows
-- that the first walk happens to miss (35 % of the time at 1 %, 4 % at 3 %, for a page of 20)
-- are all read: tens of milliseconds per 10,000. The planner's statistics could tell such a
-- term from a rare one beforehand, but only EXPLAIN shows its estimate here (pg_stats hides the
-- statistics of a table under row-level security; only a VOLATILE function may run EXPLAIN),
-- and one costs more than the walk.
--
-- Isolation is as in ticket_search_ids (migration search_under_rls): the function runs as
-- <schema>_definer, for which the tenant policy is not in the way of the GIN index, so it
-- applies the organization itself: from the transaction's setting app.tenant_id, never from an
-- argument, hiding deleted organizations as the policies do. It returns ids only; the caller
-- reads the rows in the same statement under the ordinary policy. Every caller-supplied value
-- reaches the SQL as a parameter; the sort name only picks one of six fixed column lists.
--
-- ticket_search_ids stays for the previous release's pods during a rolling update (the new
-- index serves it); the next release drops it.
-- migrate:up

CREATE FUNCTION ticket_search_page(
    q text, sort text, lim integer,
    status text DEFAULT NULL, priority text DEFAULT NULL, assignee_id uuid DEFAULT NULL,
    requester_id uuid DEFAULT NULL, tag text DEFAULT NULL,
    after_rank smallint DEFAULT NULL, after_at timestamptz DEFAULT NULL, after_id uuid DEFAULT NULL,
    walk_rows integer DEFAULT 10000) RETURNS uuid[]
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    -- The walk is planned once per session (its plan does not depend on the values); plans of a
    -- million-row organization must not pay for JIT compilation.
    SET plan_cache_mode = force_generic_plan SET jit = off
AS $$
DECLARE
    tenant constant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    tsq constant tsquery := websearch_to_tsquery('english'::regconfig, q);
    keys text[];
    descending boolean := left(sort, 1) = '-';
    cursor_values text;
    order_by text;
    cond text := 't.org_id = $1 AND t.deleted_at IS NULL';
    f_status constant text := status;
    f_priority constant text := priority;
    f_assignee constant uuid := assignee_id;
    f_requester constant uuid := requester_id;
    max_id constant uuid := 'ffffffff-ffff-ffff-ffff-ffffffffffff';
    min_id constant uuid := '00000000-0000-0000-0000-000000000000';
    walk integer;
    matched integer;
    hits uuid[];
    truncated boolean;
BEGIN
    IF lim IS NULL OR lim NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'lim must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF tenant IS NULL OR tsq IS NULL OR numnode(tsq) = 0 THEN
        RETURN '{}';
    END IF;
    IF EXISTS (SELECT 1 FROM deleted_organization d WHERE d.org_id = tenant) THEN
        RETURN '{}';
    END IF;
    walk_rows := coalesce(walk_rows, 0);
    CASE sort
        WHEN 'created_at', '-created_at' THEN keys := ARRAY['t.created_at', 't.id']; cursor_values := '$9, $10';
        WHEN 'updated_at', '-updated_at' THEN keys := ARRAY['t.updated_at', 't.id']; cursor_values := '$9, $10';
        WHEN 'priority', '-priority' THEN keys := ARRAY['t.priority_rank', 't.created_at', 't.id'];
                                          cursor_values := '$8, $9, $10';
        ELSE RAISE EXCEPTION 'unknown sort' USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    order_by := array_to_string(ARRAY(SELECT k || CASE WHEN descending THEN ' DESC' ELSE ' ASC' END
                                      FROM unnest(keys) k), ', ');
    IF status IS NOT NULL THEN cond := cond || ' AND t.status = $3'; END IF;
    IF priority IS NOT NULL THEN cond := cond || ' AND t.priority = $4'; END IF;
    IF assignee_id IS NOT NULL THEN cond := cond || ' AND t.assignee_id = $5'; END IF;
    IF requester_id IS NOT NULL THEN cond := cond || ' AND t.requester_id = $6'; END IF;
    IF tag IS NOT NULL THEN cond := cond || ' AND $7 = ANY(t.tags)'; END IF;
    IF after_id IS NOT NULL OR after_at IS NOT NULL OR after_rank IS NOT NULL THEN
        IF after_id IS NULL OR after_at IS NULL OR (after_rank IS NULL) = (cardinality(keys) = 3) THEN
            RAISE EXCEPTION 'incomplete cursor' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        cond := cond || format(' AND (%s) %s (%s)', array_to_string(keys, ', '),
                               CASE WHEN descending THEN '<' ELSE '>' END, cursor_values);
    END IF;

    -- A walk reads the organization's rows in sort order from the cursor on, at most walk of
    -- them, and returns those that match (the filters and the term), in order, and its last row
    -- (the walk-th, if there is one) as a sentinel: a walk that reaches it short of a page may
    -- have missed matches further on. row_number() numbers rows as they stream, so a walk stops
    -- as soon as the page is full. One statement for the six sorts (only the branch of the sort
    -- runs), planned once per session: each branch walks its sort's index from the cursor (or,
    -- without one, from the end: the coalesce() bounds), so the plan needs no value. The
    -- filters are tested on the walked rows, not in the index scan, so that a walk reads at most
    -- walk rows whatever the filters select.
    --
    -- The first walk reads 5 rows a result: a common term (a fifth of the rows or more) fills the
    -- page. One that comes up short with some matches walks again from the start, deep enough
    -- for twice the rows the page needs at the density it saw, unless that is beyond walk_rows.
    -- One without a match gives up walking: the term is rare here, and its matches are read
    -- through the index.
    walk := least(walk_rows, 5 * lim);
    WHILE walk >= 1 LOOP
        SELECT array_agg(w.id ORDER BY w.n) FILTER (WHERE w.hit), coalesce(bool_or(w.n = walk), false)
        INTO hits, truncated
        FROM (SELECT s.id, s.hit, s.n
              FROM (SELECT m.id, m.hit, row_number() OVER () AS n
                    -- OFFSET 0 keeps the test below the window: it numbers (id, hit), not whole rows.
                    FROM (SELECT r.id,
                                 (f_status IS NULL OR r.status = f_status)
                                 AND (f_priority IS NULL OR r.priority = f_priority)
                                 AND (f_assignee IS NULL OR r.assignee_id = f_assignee)
                                 AND (f_requester IS NULL OR r.requester_id = f_requester)
                                 AND (tag IS NULL OR tag = ANY(r.tags)) AND r.search @@ tsq AS hit
                    FROM ((SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = '-created_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.created_at, t.id) < (coalesce(after_at, 'infinity'), coalesce(after_id, max_id))
                           ORDER BY t.created_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'created_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.created_at, t.id) > (coalesce(after_at, '-infinity'), coalesce(after_id, min_id))
                           ORDER BY t.created_at, t.id LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = '-updated_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.updated_at, t.id) < (coalesce(after_at, 'infinity'), coalesce(after_id, max_id))
                           ORDER BY t.updated_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'updated_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.updated_at, t.id) > (coalesce(after_at, '-infinity'), coalesce(after_id, min_id))
                           ORDER BY t.updated_at, t.id LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = '-priority' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.priority_rank, t.created_at, t.id) < (coalesce(after_rank, 32767::smallint),
                                                                          coalesce(after_at, 'infinity'),
                                                                          coalesce(after_id, max_id))
                           ORDER BY t.priority_rank DESC, t.created_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'priority' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.priority_rank, t.created_at, t.id) > (coalesce(after_rank, (-32768)::smallint),
                                                                          coalesce(after_at, '-infinity'),
                                                                          coalesce(after_id, min_id))
                           ORDER BY t.priority_rank, t.created_at, t.id LIMIT walk)) r OFFSET 0) m) s
              WHERE s.hit OR s.n = walk
              LIMIT lim) w;
        matched := coalesce(cardinality(hits), 0);
        IF NOT truncated OR matched >= lim THEN
            RETURN coalesce(hits, '{}');
        END IF;
        EXIT WHEN matched = 0 OR walk >= walk_rows OR lim::numeric * walk / matched > walk_rows;
        walk := least(walk_rows, ceil(2.0 * lim * walk / matched))::integer;
    END LOOP;

    -- MATERIALIZED: the planner chooses how to find every match (the GIN index for a rare term)
    -- without the page's ORDER BY ... LIMIT tempting it into the walk that just came up short.
    EXECUTE format(
        'WITH m AS MATERIALIZED ('
        '    SELECT t.id, %s FROM ticket t '
        '    WHERE %s AND ARRAY[t.org_id] @> ARRAY[$1] AND t.search @@ $2) '
        'SELECT ARRAY(SELECT t.id FROM m t ORDER BY %s LIMIT $12)',
        array_to_string(keys[1:cardinality(keys) - 1], ', '), cond, order_by)
    INTO hits
    USING tenant, tsq, status, priority, assignee_id, requester_id, tag, after_rank, after_at, after_id,
          walk_rows::bigint, lim::bigint;
    RETURN hits;
END
$$;
REVOKE ALL ON FUNCTION ticket_search_page FROM PUBLIC;

DO $$
DECLARE
    definer text := current_schema() || '_definer';
    app text := current_schema() || '_app';
BEGIN
    -- The walk, filters and sort keys read these; title, description and comments stay unreadable.
    EXECUTE format('GRANT SELECT (status, priority, priority_rank, tags, requester_id, assignee_id, created_at, '
                   'updated_at) ON ticket TO %I', definer);
    EXECUTE format('ALTER FUNCTION ticket_search_page SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_search_page TO %I', app);
    EXECUTE format('ALTER FUNCTION ticket_search_page OWNER TO %I', definer);
END
$$;

-- migrate:down
DO $$
DECLARE
    definer text := current_schema() || '_definer';
BEGIN
    EXECUTE format('REVOKE SELECT (status, priority, priority_rank, tags, requester_id, assignee_id, created_at, '
                   'updated_at) ON ticket FROM %I', definer);
    -- Dropped as the definer role, its owner (see search_under_rls).
    EXECUTE format('SET LOCAL ROLE %I', definer);
    DROP FUNCTION ticket_search_page;
    RESET ROLE;
END
$$;
