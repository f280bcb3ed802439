-- A search's first walk reads the rows it returns, under the policy (issue 16).
--
-- ticket_search used to take every page's ids from ticket_search_page (SECURITY DEFINER, one
-- statement for the six sorts) and then read those rows again by primary key. Most searches are
-- answered by that first walk (a term in a fifth of the tickets or more fills a page within 5
-- rows a result), so it now runs here, as ticket_app under the tenant_isolation policy, one
-- statement per sort (only that sort's plan starts), and returns the matching rows themselves.
-- The row-level security argument is the policy's own: the term is tested on rows the policy
-- already let through (the walk's LIMIT keeps every test above the scan), and no index on the
-- term is used. Only a walk that comes up short goes on: the matches it found are the first of
-- the page, and the rest come from ticket_search_page, from the walk's last row (its cursor) on,
-- exactly as before (straight to the full-text index when the walk found nothing: a rare term).
--
-- The function is STABLE so that every statement in it reads one snapshot: the walk and the query
-- that finds its last row see the same rows, or the page could repeat or skip one.
--
-- Measured with pgbench (one client, ticket_app, prepared, 5,000 tickets of one organization,
-- the words of deploy/bench/load.py): a common term with status=open 220-237 -> 122-132 us per
-- call (a SELECT 1 costs 56), two terms in no ticket 343-346 -> 179-182 us;
-- the unfiltered first page (ticket_page) 100-102 us. The answers were compared with the old
-- function's on 2,226 pages (random sort, limit, term, filters, cursor and walk size): equal.
-- migrate:up

CREATE OR REPLACE FUNCTION ticket_search(p_org_id uuid, p_q text, p_sort text, p_limit integer, p_status text,
                              p_priority text, p_assignee_id uuid, p_requester_id uuid, p_tag text,
                              p_after_rank smallint, p_after_at timestamptz, p_after_id uuid, p_walk_rows integer)
    RETURNS TABLE (id uuid, org_id uuid, number bigint, title text, description text, status text,
                   priority text, priority_rank smallint, tags text[], requester_id uuid, assignee_id uuid,
                   created_at timestamptz, updated_at timestamptz, version integer, deleted_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY INVOKER
    SET plan_cache_mode = force_generic_plan SET jit = off
AS $$
DECLARE
    tsq constant tsquery := websearch_to_tsquery('english'::regconfig, p_q);
    walk constant integer := least(coalesce(p_walk_rows, 0), 5 * p_limit);
    at_hi constant timestamptz := coalesce(p_after_at, 'infinity');
    at_lo constant timestamptz := coalesce(p_after_at, '-infinity');
    id_hi constant uuid := coalesce(p_after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff');
    id_lo constant uuid := coalesce(p_after_id, '00000000-0000-0000-0000-000000000000');
    rank_hi constant smallint := coalesce(p_after_rank, 32767);
    rank_lo constant smallint := coalesce(p_after_rank, -32768);
    returned integer := 0;
    s_rank smallint := p_after_rank;
    s_at timestamptz := p_after_at;
    s_id uuid := p_after_id;
    ids uuid[];
BEGIN
    PERFORM set_config('app.tenant_id', p_org_id::text, true);
    IF tsq IS NULL OR numnode(tsq) = 0 OR p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        -- ticket_search_page's answer to these: no rows, or its error for a limit out of range.
        ids := ticket_search_page(q => p_q, sort => p_sort, lim => p_limit);
        RETURN;
    END IF;
    -- The first walk: at most walk rows of the organization (the policy's) in sort order from the
    -- cursor, the matching ones returned. A page it fills ends here. Otherwise the row the walk
    -- ended on (its walk-th, if there is one) is where the rest of the page starts; with no such
    -- row the walk saw every row after the cursor, and what it returned is the whole answer.
    IF walk >= 1 THEN
        IF p_sort = '-created_at' THEN
            RETURN QUERY
                SELECT w.id, w.org_id, w.number, w.title, w.description, w.status, w.priority, w.priority_rank, w.tags, w.requester_id, w.assignee_id, w.created_at, w.updated_at, w.version, w.deleted_at
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search FROM ticket t
                      WHERE t.deleted_at IS NULL AND (t.created_at, t.id) < (at_hi, id_hi)
                      ORDER BY t.created_at DESC, t.id DESC LIMIT walk) w
                WHERE (p_status IS NULL OR w.status = p_status)
                  AND (p_priority IS NULL OR w.priority = p_priority)
                  AND (p_assignee_id IS NULL OR w.assignee_id = p_assignee_id)
                  AND (p_requester_id IS NULL OR w.requester_id = p_requester_id)
                  AND (p_tag IS NULL OR p_tag = ANY(w.tags)) AND w.search @@ tsq
                LIMIT p_limit;
            GET DIAGNOSTICS returned = ROW_COUNT;
            IF returned < p_limit THEN
                SELECT t.created_at, t.id INTO s_at, s_id FROM ticket t
                WHERE t.deleted_at IS NULL AND (t.created_at, t.id) < (at_hi, id_hi)
                ORDER BY t.created_at DESC, t.id DESC OFFSET walk - 1 LIMIT 1;
            END IF;
        ELSIF p_sort = 'created_at' THEN
            RETURN QUERY
                SELECT w.id, w.org_id, w.number, w.title, w.description, w.status, w.priority, w.priority_rank, w.tags, w.requester_id, w.assignee_id, w.created_at, w.updated_at, w.version, w.deleted_at
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search FROM ticket t
                      WHERE t.deleted_at IS NULL AND (t.created_at, t.id) > (at_lo, id_lo)
                      ORDER BY t.created_at, t.id LIMIT walk) w
                WHERE (p_status IS NULL OR w.status = p_status)
                  AND (p_priority IS NULL OR w.priority = p_priority)
                  AND (p_assignee_id IS NULL OR w.assignee_id = p_assignee_id)
                  AND (p_requester_id IS NULL OR w.requester_id = p_requester_id)
                  AND (p_tag IS NULL OR p_tag = ANY(w.tags)) AND w.search @@ tsq
                LIMIT p_limit;
            GET DIAGNOSTICS returned = ROW_COUNT;
            IF returned < p_limit THEN
                SELECT t.created_at, t.id INTO s_at, s_id FROM ticket t
                WHERE t.deleted_at IS NULL AND (t.created_at, t.id) > (at_lo, id_lo)
                ORDER BY t.created_at, t.id OFFSET walk - 1 LIMIT 1;
            END IF;
        ELSIF p_sort = '-updated_at' THEN
            RETURN QUERY
                SELECT w.id, w.org_id, w.number, w.title, w.description, w.status, w.priority, w.priority_rank, w.tags, w.requester_id, w.assignee_id, w.created_at, w.updated_at, w.version, w.deleted_at
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search FROM ticket t
                      WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) < (at_hi, id_hi)
                      ORDER BY t.updated_at DESC, t.id DESC LIMIT walk) w
                WHERE (p_status IS NULL OR w.status = p_status)
                  AND (p_priority IS NULL OR w.priority = p_priority)
                  AND (p_assignee_id IS NULL OR w.assignee_id = p_assignee_id)
                  AND (p_requester_id IS NULL OR w.requester_id = p_requester_id)
                  AND (p_tag IS NULL OR p_tag = ANY(w.tags)) AND w.search @@ tsq
                LIMIT p_limit;
            GET DIAGNOSTICS returned = ROW_COUNT;
            IF returned < p_limit THEN
                SELECT t.updated_at, t.id INTO s_at, s_id FROM ticket t
                WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) < (at_hi, id_hi)
                ORDER BY t.updated_at DESC, t.id DESC OFFSET walk - 1 LIMIT 1;
            END IF;
        ELSIF p_sort = 'updated_at' THEN
            RETURN QUERY
                SELECT w.id, w.org_id, w.number, w.title, w.description, w.status, w.priority, w.priority_rank, w.tags, w.requester_id, w.assignee_id, w.created_at, w.updated_at, w.version, w.deleted_at
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search FROM ticket t
                      WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) > (at_lo, id_lo)
                      ORDER BY t.updated_at, t.id LIMIT walk) w
                WHERE (p_status IS NULL OR w.status = p_status)
                  AND (p_priority IS NULL OR w.priority = p_priority)
                  AND (p_assignee_id IS NULL OR w.assignee_id = p_assignee_id)
                  AND (p_requester_id IS NULL OR w.requester_id = p_requester_id)
                  AND (p_tag IS NULL OR p_tag = ANY(w.tags)) AND w.search @@ tsq
                LIMIT p_limit;
            GET DIAGNOSTICS returned = ROW_COUNT;
            IF returned < p_limit THEN
                SELECT t.updated_at, t.id INTO s_at, s_id FROM ticket t
                WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) > (at_lo, id_lo)
                ORDER BY t.updated_at, t.id OFFSET walk - 1 LIMIT 1;
            END IF;
        ELSIF p_sort = '-priority' THEN
            RETURN QUERY
                SELECT w.id, w.org_id, w.number, w.title, w.description, w.status, w.priority, w.priority_rank, w.tags, w.requester_id, w.assignee_id, w.created_at, w.updated_at, w.version, w.deleted_at
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search FROM ticket t
                      WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) < (rank_hi, at_hi, id_hi)
                      ORDER BY t.priority_rank DESC, t.created_at DESC, t.id DESC LIMIT walk) w
                WHERE (p_status IS NULL OR w.status = p_status)
                  AND (p_priority IS NULL OR w.priority = p_priority)
                  AND (p_assignee_id IS NULL OR w.assignee_id = p_assignee_id)
                  AND (p_requester_id IS NULL OR w.requester_id = p_requester_id)
                  AND (p_tag IS NULL OR p_tag = ANY(w.tags)) AND w.search @@ tsq
                LIMIT p_limit;
            GET DIAGNOSTICS returned = ROW_COUNT;
            IF returned < p_limit THEN
                SELECT t.priority_rank, t.created_at, t.id INTO s_rank, s_at, s_id FROM ticket t
                WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) < (rank_hi, at_hi, id_hi)
                ORDER BY t.priority_rank DESC, t.created_at DESC, t.id DESC OFFSET walk - 1 LIMIT 1;
            END IF;
        ELSIF p_sort = 'priority' THEN
            RETURN QUERY
                SELECT w.id, w.org_id, w.number, w.title, w.description, w.status, w.priority, w.priority_rank, w.tags, w.requester_id, w.assignee_id, w.created_at, w.updated_at, w.version, w.deleted_at
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search FROM ticket t
                      WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) > (rank_lo, at_lo, id_lo)
                      ORDER BY t.priority_rank, t.created_at, t.id LIMIT walk) w
                WHERE (p_status IS NULL OR w.status = p_status)
                  AND (p_priority IS NULL OR w.priority = p_priority)
                  AND (p_assignee_id IS NULL OR w.assignee_id = p_assignee_id)
                  AND (p_requester_id IS NULL OR w.requester_id = p_requester_id)
                  AND (p_tag IS NULL OR p_tag = ANY(w.tags)) AND w.search @@ tsq
                LIMIT p_limit;
            GET DIAGNOSTICS returned = ROW_COUNT;
            IF returned < p_limit THEN
                SELECT t.priority_rank, t.created_at, t.id INTO s_rank, s_at, s_id FROM ticket t
                WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) > (rank_lo, at_lo, id_lo)
                ORDER BY t.priority_rank, t.created_at, t.id OFFSET walk - 1 LIMIT 1;
            END IF;
        ELSE
            RAISE EXCEPTION 'unknown sort' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF returned >= p_limit OR s_id IS NULL THEN
            RETURN;
        END IF;
    END IF;
    -- The rest of the page, from the walk's last row on: ids from ticket_search_page (its own
    -- walks, or the full-text index; straight to the index when the walk above matched nothing),
    -- then one primary-key probe per id under the policy, in the page's order, the filters tested
    -- again. deleted_at is tested outside the probe, so that no partial (deleted_at IS NULL)
    -- index can stand in for the primary key.
    ids := ticket_search_page(q => p_q, sort => p_sort, lim => p_limit - returned, status => p_status,
                              priority => p_priority, assignee_id => p_assignee_id, requester_id => p_requester_id,
                              tag => p_tag, after_rank => s_rank, after_at => s_at, after_id => s_id,
                              walk_rows => CASE WHEN returned = 0 AND walk >= 1 THEN 0 ELSE p_walk_rows END);
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

-- migrate:down

CREATE OR REPLACE FUNCTION ticket_search(p_org_id uuid, p_q text, p_sort text, p_limit integer, p_status text,
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
