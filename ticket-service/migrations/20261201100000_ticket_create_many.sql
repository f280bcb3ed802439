-- Creations in batches (issue 16): ticket_create_many numbers, inserts and publishes several new
-- tickets of one organization in one statement and one commit. ticket-service groups the
-- creations that arrive for an organization while its previous batch is being written
-- (tickets.batching): one round trip, one commit and one hold of the organization's counter row
-- for all of them, where each used to take the counter in turn until its own commit.
--
-- Numbers stay gapless and in arrival order: the counter moves by the batch's size under its row
-- lock, held until the batch commits, and row n of the arrays gets last_number - size + n. Each
-- row gets its own created_at (the column's clock_timestamp() default, evaluated row by row in
-- array order). p_events[n] is the envelope the service built and checked for row n
-- (shared.messaging.outbox.new_event); what only the row knows is written into it here, as
-- ticket_create did. A single creation is a batch of one: ticket_create is replaced.
--
-- SECURITY INVOKER, as before: the statements run as ticket_app under the tenant_isolation
-- policies, scoped with set_config(..., true) first (a deleted organization's counter is
-- refused: insufficient_privilege, and nothing is written).
-- migrate:up

CREATE FUNCTION ticket_create_many(p_org_id uuid, p_ids uuid[], p_titles text[], p_descriptions text[],
                                   p_priorities text[], p_tags jsonb[], p_requester_ids uuid[],
                                   p_assignee_ids uuid[], p_event_ids uuid[], p_event_type text,
                                   p_events jsonb[])
    RETURNS TABLE (id uuid, number bigint, title text, description text, status text, priority text,
                   tags text[], requester_id uuid, assignee_id uuid, created_at timestamptz,
                   updated_at timestamptz, version integer)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
#variable_conflict use_column
DECLARE
    v_size constant integer := cardinality(p_ids);
    v_last bigint;
BEGIN
    PERFORM set_config('app.tenant_id', p_org_id::text, true);
    INSERT INTO ticket_counter AS c (org_id, last_number) VALUES (p_org_id, v_size)
    ON CONFLICT (org_id) DO UPDATE SET last_number = c.last_number + v_size
    RETURNING c.last_number INTO v_last;
    RETURN QUERY
    WITH new AS (
        INSERT INTO ticket AS t (id, org_id, number, title, description, priority, tags, requester_id, assignee_id)
        SELECT r.id, p_org_id, v_last - v_size + r.n, r.title, r.description, r.priority,
               ARRAY(SELECT jsonb_array_elements_text(r.tags)), r.requester_id, r.assignee_id
        FROM unnest(p_ids, p_titles, p_descriptions, p_priorities, p_tags, p_requester_ids, p_assignee_ids)
             WITH ORDINALITY AS r(id, title, description, priority, tags, requester_id, assignee_id, n)
        ORDER BY r.n
        RETURNING t.id, t.number, t.title, t.description, t.status, t.priority, t.tags, t.requester_id,
                  t.assignee_id, t.created_at, t.updated_at, t.version),
    published AS (
        INSERT INTO outbox (id, routing_key, payload)
        SELECT e.event_id, p_event_type, e.event || jsonb_build_object(
                   'occurred_at', ticket_json_time(new.created_at),
                   'data', (e.event -> 'data') || jsonb_build_object(
                       'number', new.number, 'status', new.status, 'version', new.version,
                       'created_at', ticket_json_time(new.created_at),
                       'updated_at', ticket_json_time(new.updated_at)))
        FROM unnest(p_ids, p_event_ids, p_events) AS e(id, event_id, event)
        JOIN new ON new.id = e.id
        ORDER BY new.number)
    SELECT * FROM new ORDER BY new.number;
END
$$;

REVOKE ALL ON FUNCTION ticket_create_many(uuid, uuid[], text[], text[], text[], jsonb[], uuid[], uuid[], uuid[],
                                          text, jsonb[]) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_create_many(uuid, uuid[], text[], text[], text[], jsonb[], '
                   'uuid[], uuid[], uuid[], text, jsonb[]) TO %I', current_schema() || '_app');
END
$$;

DROP FUNCTION ticket_create(uuid, uuid, text, text, text, text[], uuid, uuid, uuid, text, jsonb);

-- migrate:down

CREATE FUNCTION ticket_create(p_org_id uuid, p_id uuid, p_title text, p_description text, p_priority text,
                              p_tags text[], p_requester_id uuid, p_assignee_id uuid, p_event_id uuid,
                              p_event_type text, p_event jsonb)
    RETURNS TABLE (id uuid, number bigint, title text, description text, status text, priority text,
                   tags text[], requester_id uuid, assignee_id uuid, created_at timestamptz,
                   updated_at timestamptz, version integer)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
#variable_conflict use_column
DECLARE
    v_number bigint;
BEGIN
    PERFORM set_config('app.tenant_id', p_org_id::text, true);
    INSERT INTO ticket_counter AS c (org_id, last_number) VALUES (p_org_id, 1)
    ON CONFLICT (org_id) DO UPDATE SET last_number = c.last_number + 1
    RETURNING c.last_number INTO v_number;
    INSERT INTO ticket AS t (id, org_id, number, title, description, priority, tags, requester_id, assignee_id)
    VALUES (p_id, p_org_id, v_number, p_title, p_description, p_priority, p_tags, p_requester_id, p_assignee_id)
    RETURNING t.id, t.number, t.title, t.description, t.status, t.priority, t.tags, t.requester_id,
              t.assignee_id, t.created_at, t.updated_at, t.version
    INTO id, number, title, description, status, priority, tags, requester_id, assignee_id, created_at,
         updated_at, version;
    INSERT INTO outbox (id, routing_key, payload)
    VALUES (p_event_id, p_event_type,
            p_event || jsonb_build_object(
                'occurred_at', ticket_json_time(created_at),
                'data', (p_event -> 'data') || jsonb_build_object(
                    'number', number, 'status', status, 'version', version,
                    'created_at', ticket_json_time(created_at), 'updated_at', ticket_json_time(updated_at))));
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION ticket_create(uuid, uuid, text, text, text, text[], uuid, uuid, uuid, text, jsonb) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION ticket_create(uuid, uuid, text, text, text, text[], uuid, uuid, '
                   'uuid, text, jsonb) TO %I', current_schema() || '_app');
END
$$;

DROP FUNCTION ticket_create_many(uuid, uuid[], text[], text[], text[], jsonb[], uuid[], uuid[], uuid[], text, jsonb[]);
