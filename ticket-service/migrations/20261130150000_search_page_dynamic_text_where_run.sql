-- ticket_search_page builds its dynamic statement's text only where it runs it (issue 16).
--
-- Every search used to build the text of the dynamic statement (its ORDER BY, through a query on
-- unnest(), and its conditions) before walking, though only a member's or an assignee's search
-- whose walks came up short runs it. Measured with pgbench (one client, the service role, 5,000
-- tickets, a common term with status=open): ticket_search_page 113-121 -> 96-99 us of
-- PostgreSQL's CPU per call. The cursor is still checked first, on every path.
--
-- Nothing else changes: the same arguments, the same answers, the same owner, grants and isolation.
-- migrate:up

-- Dropped as the definer role, its owner (see search_under_rls), and created again as in
-- search_page: owned by the definer, EXECUTE for the service role only. ticket_search (the
-- only caller) finds the new one by name on its next call.
DO $$
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', current_schema() || '_definer');
    DROP FUNCTION ticket_search_page;
    RESET ROLE;
END
$$;

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
    -- The cursor's bounds (with no cursor, the ends of the order) as plain values: a row
    -- comparison against coalesce() is no index condition of the generic plan, and a walk from a
    -- cursor deep in the order would read every row before it.
    at_hi constant timestamptz := coalesce(after_at, 'infinity');
    at_lo constant timestamptz := coalesce(after_at, '-infinity');
    id_hi constant uuid := coalesce(after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff');
    id_lo constant uuid := coalesce(after_id, '00000000-0000-0000-0000-000000000000');
    rank_hi constant smallint := coalesce(after_rank, 32767);
    rank_lo constant smallint := coalesce(after_rank, -32768);
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
    IF (after_id IS NOT NULL OR after_at IS NOT NULL OR after_rank IS NOT NULL)
       AND (after_id IS NULL OR after_at IS NULL OR (after_rank IS NULL) = (cardinality(keys) = 3)) THEN
        RAISE EXCEPTION 'incomplete cursor' USING ERRCODE = 'invalid_parameter_value';
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
                             AND (t.created_at, t.id) < (at_hi, id_hi)
                           ORDER BY t.created_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'created_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.created_at, t.id) > (at_lo, id_lo)
                           ORDER BY t.created_at, t.id LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = '-updated_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.updated_at, t.id) < (at_hi, id_hi)
                           ORDER BY t.updated_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'updated_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.updated_at, t.id) > (at_lo, id_lo)
                           ORDER BY t.updated_at, t.id LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = '-priority' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.priority_rank, t.created_at, t.id) < (rank_hi, at_hi, id_hi)
                           ORDER BY t.priority_rank DESC, t.created_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'priority' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.priority_rank, t.created_at, t.id) > (rank_lo, at_lo, id_lo)
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

    -- Every match, then the page. Without a requester or assignee filter (an agent's or an
    -- admin's search) the matches can only come from the organization's full-text index: one
    -- static statement, planned once per session like the walk (planning the dynamic statement
    -- below cost more than running it, a third of a rare term's answer at 1,000,000 tickets).
    -- The page's order and cursor are picked by the sort name (CASE), so one plan serves all six.
    IF assignee_id IS NULL AND requester_id IS NULL THEN
        hits := ARRAY(
            SELECT m.id
            FROM (SELECT t.id, t.priority_rank, t.created_at, t.updated_at
                  FROM ticket t
                  WHERE ARRAY[t.org_id] @> ARRAY[tenant] AND t.search @@ tsq AND t.deleted_at IS NULL
                    AND (f_status IS NULL OR t.status = f_status)
                    AND (f_priority IS NULL OR t.priority = f_priority)
                    AND (tag IS NULL OR tag = ANY(t.tags))
                    AND CASE sort
                        WHEN '-created_at' THEN (t.created_at, t.id) < (at_hi, id_hi)
                        WHEN 'created_at' THEN (t.created_at, t.id) > (at_lo, id_lo)
                        WHEN '-updated_at' THEN (t.updated_at, t.id) < (at_hi, id_hi)
                        WHEN 'updated_at' THEN (t.updated_at, t.id) > (at_lo, id_lo)
                        WHEN '-priority' THEN (t.priority_rank, t.created_at, t.id)
                                              < (rank_hi, at_hi, id_hi)
                        ELSE (t.priority_rank, t.created_at, t.id)
                             > (rank_lo, at_lo, id_lo)
                        END
                  OFFSET 0) m
            ORDER BY CASE WHEN sort = 'priority' THEN m.priority_rank END,
                     CASE WHEN sort = '-priority' THEN m.priority_rank END DESC,
                     CASE WHEN sort IN ('created_at', 'priority') THEN m.created_at END,
                     CASE WHEN sort IN ('-created_at', '-priority') THEN m.created_at END DESC,
                     CASE WHEN sort = 'updated_at' THEN m.updated_at END,
                     CASE WHEN sort = '-updated_at' THEN m.updated_at END DESC,
                     CASE WHEN NOT descending THEN m.id END,
                     CASE WHEN descending THEN m.id END DESC
            LIMIT lim);
        RETURN hits;
    END IF;

    -- A member's own tickets or an assignee's: the planner chooses how to find every match (the
    -- requester or assignee index, or the full-text one), for these values. MATERIALIZED keeps
    -- the page's ORDER BY ... LIMIT from tempting it into the walk that just came up short.
    -- The statement's text is built here only, the one path that runs it.
    order_by := array_to_string(ARRAY(SELECT k || CASE WHEN descending THEN ' DESC' ELSE ' ASC' END
                                      FROM unnest(keys) k), ', ');
    IF status IS NOT NULL THEN cond := cond || ' AND t.status = $3'; END IF;
    IF priority IS NOT NULL THEN cond := cond || ' AND t.priority = $4'; END IF;
    IF assignee_id IS NOT NULL THEN cond := cond || ' AND t.assignee_id = $5'; END IF;
    IF requester_id IS NOT NULL THEN cond := cond || ' AND t.requester_id = $6'; END IF;
    IF tag IS NOT NULL THEN cond := cond || ' AND $7 = ANY(t.tags)'; END IF;
    IF after_id IS NOT NULL THEN
        cond := cond || format(' AND (%s) %s (%s)', array_to_string(keys, ', '),
                               CASE WHEN descending THEN '<' ELSE '>' END, cursor_values);
    END IF;
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
    EXECUTE format('ALTER FUNCTION ticket_search_page SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_search_page TO %I', app);
    EXECUTE format('ALTER FUNCTION ticket_search_page OWNER TO %I', definer);
END
$$;

-- migrate:down

-- Dropped as the definer role, its owner (see search_under_rls), and created again as in
-- search_page: owned by the definer, EXECUTE for the service role only. ticket_search (the
-- only caller) finds the new one by name on its next call.
DO $$
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', current_schema() || '_definer');
    DROP FUNCTION ticket_search_page;
    RESET ROLE;
END
$$;

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
    -- The cursor's bounds (with no cursor, the ends of the order) as plain values: a row
    -- comparison against coalesce() is no index condition of the generic plan, and a walk from a
    -- cursor deep in the order would read every row before it.
    at_hi constant timestamptz := coalesce(after_at, 'infinity');
    at_lo constant timestamptz := coalesce(after_at, '-infinity');
    id_hi constant uuid := coalesce(after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff');
    id_lo constant uuid := coalesce(after_id, '00000000-0000-0000-0000-000000000000');
    rank_hi constant smallint := coalesce(after_rank, 32767);
    rank_lo constant smallint := coalesce(after_rank, -32768);
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
                             AND (t.created_at, t.id) < (at_hi, id_hi)
                           ORDER BY t.created_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'created_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.created_at, t.id) > (at_lo, id_lo)
                           ORDER BY t.created_at, t.id LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = '-updated_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.updated_at, t.id) < (at_hi, id_hi)
                           ORDER BY t.updated_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'updated_at' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.updated_at, t.id) > (at_lo, id_lo)
                           ORDER BY t.updated_at, t.id LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = '-priority' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.priority_rank, t.created_at, t.id) < (rank_hi, at_hi, id_hi)
                           ORDER BY t.priority_rank DESC, t.created_at DESC, t.id DESC LIMIT walk)
                          UNION ALL
                          (SELECT t.id, t.status, t.priority, t.assignee_id, t.requester_id, t.tags, t.search
                           FROM ticket t WHERE sort = 'priority' AND t.org_id = tenant AND t.deleted_at IS NULL
                             AND (t.priority_rank, t.created_at, t.id) > (rank_lo, at_lo, id_lo)
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

    -- Every match, then the page. Without a requester or assignee filter (an agent's or an
    -- admin's search) the matches can only come from the organization's full-text index: one
    -- static statement, planned once per session like the walk (planning the dynamic statement
    -- below cost more than running it, a third of a rare term's answer at 1,000,000 tickets).
    -- The page's order and cursor are picked by the sort name (CASE), so one plan serves all six.
    IF assignee_id IS NULL AND requester_id IS NULL THEN
        hits := ARRAY(
            SELECT m.id
            FROM (SELECT t.id, t.priority_rank, t.created_at, t.updated_at
                  FROM ticket t
                  WHERE ARRAY[t.org_id] @> ARRAY[tenant] AND t.search @@ tsq AND t.deleted_at IS NULL
                    AND (f_status IS NULL OR t.status = f_status)
                    AND (f_priority IS NULL OR t.priority = f_priority)
                    AND (tag IS NULL OR tag = ANY(t.tags))
                    AND CASE sort
                        WHEN '-created_at' THEN (t.created_at, t.id) < (at_hi, id_hi)
                        WHEN 'created_at' THEN (t.created_at, t.id) > (at_lo, id_lo)
                        WHEN '-updated_at' THEN (t.updated_at, t.id) < (at_hi, id_hi)
                        WHEN 'updated_at' THEN (t.updated_at, t.id) > (at_lo, id_lo)
                        WHEN '-priority' THEN (t.priority_rank, t.created_at, t.id)
                                              < (rank_hi, at_hi, id_hi)
                        ELSE (t.priority_rank, t.created_at, t.id)
                             > (rank_lo, at_lo, id_lo)
                        END
                  OFFSET 0) m
            ORDER BY CASE WHEN sort = 'priority' THEN m.priority_rank END,
                     CASE WHEN sort = '-priority' THEN m.priority_rank END DESC,
                     CASE WHEN sort IN ('created_at', 'priority') THEN m.created_at END,
                     CASE WHEN sort IN ('-created_at', '-priority') THEN m.created_at END DESC,
                     CASE WHEN sort = 'updated_at' THEN m.updated_at END,
                     CASE WHEN sort = '-updated_at' THEN m.updated_at END DESC,
                     CASE WHEN NOT descending THEN m.id END,
                     CASE WHEN descending THEN m.id END DESC
            LIMIT lim);
        RETURN hits;
    END IF;

    -- A member's own tickets or an assignee's: the planner chooses how to find every match (the
    -- requester or assignee index, or the full-text one), for these values. MATERIALIZED keeps
    -- the page's ORDER BY ... LIMIT from tempting it into the walk that just came up short.
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
    EXECUTE format('ALTER FUNCTION ticket_search_page SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_search_page TO %I', app);
    EXECUTE format('ALTER FUNCTION ticket_search_page OWNER TO %I', definer);
END
$$;
