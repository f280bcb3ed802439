-- A ticket's API representation kept with its row, so that a list page is read, not built (issue 16).
--
-- A list page (the first page, a search, a filtered page) used to come back as 13 columns a row,
-- which ticket-service decoded (timestamps into datetimes, arrays into lists), put into a dict per
-- ticket and serialized again: under `make bench` it spent 431-443 us of CPU on such a page against
-- 282-285 on a GET. The row now keeps the Ticket's JSON text itself, in a generated column:
-- written by PostgreSQL whenever the row is (insert or update, whoever writes it), never by hand,
-- so it cannot fall behind the row. A page returns that text with its sort key only, and the
-- service joins the texts into the page (351-369 us a page in the same benchmark).
--
-- ticket_representation writes exactly what shared.web.dumps_json writes for the Ticket
-- (TicketRow.representation): the keys of schemas.TicketOut in order, compact, strings escaped as
-- orjson escapes them (to_json: '"', '\' and the controls below U+0020; nothing else), times in
-- UTC with "Z" and the microseconds only when there are any (as ticket_json_time). It is PL/pgSQL
-- (a SQL function that cannot be inlined cost 70-75 us a row; this one 6-10 us) and calls only
-- pg_catalog's functions, so no search_path is needed to evaluate it (a restore runs with an empty
-- one). IMMUTABLE is true of it: to_char with numeric fields only, at time zone UTC, and to_json of
-- text and text[], read no setting.
--
-- Adding a stored generated column rewrites the table once, its indexes included (100,000
-- tickets: 2.2 s here). Each ticket written costs PostgreSQL 6-8 us more (100,000 inserted in one
-- statement: 3.8-4.1 s before, 4.6-4.7 s after), and a row is about twice as long. ticket_page
-- and ticket_search now return the id, the sort keys and the representation instead of every
-- column: a function's result type cannot be changed in place, so both are dropped and created
-- again, with their grants; their bodies are otherwise those of migrations
-- ticket_page_generic_plan and search_walk_under_policy.
-- migrate:up

CREATE FUNCTION ticket_representation(p_id uuid, p_number bigint, p_title text, p_description text, p_status text,
                                      p_priority text, p_tags text[], p_requester_id uuid, p_assignee_id uuid,
                                      p_created_at timestamptz, p_updated_at timestamptz, p_version integer)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN '{"id":"' || p_id::text || '","number":' || p_number::text
        || ',"title":' || to_json(p_title)::text || ',"description":' || to_json(p_description)::text
        || ',"status":' || to_json(p_status)::text || ',"priority":' || to_json(p_priority)::text
        || ',"tags":' || array_to_json(p_tags)::text
        || ',"requester_id":"' || p_requester_id::text || '","assignee_id":'
        || coalesce('"' || p_assignee_id::text || '"', 'null')
        || ',"created_at":"' || to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_part('microseconds', p_created_at)::bigint % 1000000 = 0 THEN ''
                ELSE to_char(p_created_at AT TIME ZONE 'UTC', '.US') END
        || 'Z","updated_at":"' || to_char(p_updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_part('microseconds', p_updated_at)::bigint % 1000000 = 0 THEN ''
                ELSE to_char(p_updated_at AT TIME ZONE 'UTC', '.US') END
        || 'Z","version":' || p_version::text || '}';
END
$$;

ALTER TABLE ticket ADD COLUMN representation text NOT NULL GENERATED ALWAYS AS (
    ticket_representation(id, number, title, description, status, priority, tags, requester_id, assignee_id,
                          created_at, updated_at, version)) STORED;

DROP FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid);
DROP FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, smallint, timestamptz, uuid, integer);

CREATE FUNCTION ticket_page(p_org_id uuid, p_sort text, p_limit integer, p_after_rank smallint,
                            p_after_at timestamptz, p_after_id uuid)
    RETURNS TABLE (id uuid, priority_rank smallint, created_at timestamptz, updated_at timestamptz,
                   representation text)
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
            SELECT t.id, t.priority_rank, t.created_at, t.updated_at, t.representation
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.created_at, t.id) < (at_hi, id_hi)
              ORDER BY t.created_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'created_at' THEN
        RETURN QUERY
            SELECT t.id, t.priority_rank, t.created_at, t.updated_at, t.representation
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.created_at, t.id) > (at_lo, id_lo)
              ORDER BY t.created_at, t.id
            LIMIT p_limit;
    ELSIF p_sort = '-updated_at' THEN
        RETURN QUERY
            SELECT t.id, t.priority_rank, t.created_at, t.updated_at, t.representation
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) < (at_hi, id_hi)
              ORDER BY t.updated_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'updated_at' THEN
        RETURN QUERY
            SELECT t.id, t.priority_rank, t.created_at, t.updated_at, t.representation
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.updated_at, t.id) > (at_lo, id_lo)
              ORDER BY t.updated_at, t.id
            LIMIT p_limit;
    ELSIF p_sort = '-priority' THEN
        RETURN QUERY
            SELECT t.id, t.priority_rank, t.created_at, t.updated_at, t.representation
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) < (rank_hi, at_hi, id_hi)
              ORDER BY t.priority_rank DESC, t.created_at DESC, t.id DESC
            LIMIT p_limit;
    ELSIF p_sort = 'priority' THEN
        RETURN QUERY
            SELECT t.id, t.priority_rank, t.created_at, t.updated_at, t.representation
            FROM ticket t
            WHERE t.deleted_at IS NULL AND (t.priority_rank, t.created_at, t.id) > (rank_lo, at_lo, id_lo)
              ORDER BY t.priority_rank, t.created_at, t.id
            LIMIT p_limit;
    END IF;
END
$$;

CREATE FUNCTION ticket_search(p_org_id uuid, p_q text, p_sort text, p_limit integer, p_status text,
                              p_priority text, p_assignee_id uuid, p_requester_id uuid, p_tag text,
                              p_after_rank smallint, p_after_at timestamptz, p_after_id uuid, p_walk_rows integer)
    RETURNS TABLE (id uuid, priority_rank smallint, created_at timestamptz, updated_at timestamptz,
                   representation text)
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
                SELECT w.id, w.priority_rank, w.created_at, w.updated_at, w.representation
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search, t.representation FROM ticket t
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
                SELECT w.id, w.priority_rank, w.created_at, w.updated_at, w.representation
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search, t.representation FROM ticket t
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
                SELECT w.id, w.priority_rank, w.created_at, w.updated_at, w.representation
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search, t.representation FROM ticket t
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
                SELECT w.id, w.priority_rank, w.created_at, w.updated_at, w.representation
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search, t.representation FROM ticket t
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
                SELECT w.id, w.priority_rank, w.created_at, w.updated_at, w.representation
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search, t.representation FROM ticket t
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
                SELECT w.id, w.priority_rank, w.created_at, w.updated_at, w.representation
                FROM (SELECT t.id, t.org_id, t.number, t.title, t.description, t.status, t.priority, t.priority_rank, t.tags, t.requester_id, t.assignee_id, t.created_at, t.updated_at, t.version, t.deleted_at, t.search, t.representation FROM ticket t
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
        SELECT t.id, t.priority_rank, t.created_at, t.updated_at, t.representation
        FROM unnest(ids) WITH ORDINALITY AS page(id, n)
        CROSS JOIN LATERAL (SELECT r.id, r.org_id, r.number, r.title, r.description, r.status, r.priority,
                                   r.priority_rank, r.tags, r.requester_id, r.assignee_id, r.created_at,
                                   r.updated_at, r.version, r.deleted_at, r.representation
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

REVOKE ALL ON FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, smallint, timestamptz, uuid, integer) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) TO %I', current_schema() || '_app');
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, smallint, timestamptz, uuid, integer) TO %I', current_schema() || '_app');
END
$$;

-- migrate:down

DROP FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid);
DROP FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, smallint, timestamptz, uuid, integer);

CREATE FUNCTION ticket_page(p_org_id uuid, p_sort text, p_limit integer, p_after_rank smallint,
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

CREATE FUNCTION ticket_search(p_org_id uuid, p_q text, p_sort text, p_limit integer, p_status text,
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

REVOKE ALL ON FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, smallint, timestamptz, uuid, integer) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) TO %I', current_schema() || '_app');
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_search(uuid, text, text, integer, text, text, uuid, uuid, text, smallint, timestamptz, uuid, integer) TO %I', current_schema() || '_app');
END
$$;

ALTER TABLE ticket DROP COLUMN representation;
DROP FUNCTION ticket_representation(uuid, bigint, text, text, text, text, text[], uuid, uuid, timestamptz, timestamptz,
                                    integer);
