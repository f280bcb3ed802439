-- ticket_page's statements keep one plan per session (issue 16).
--
-- PL/pgSQL caches each statement's plan, but under plan_cache_mode = auto it compares the generic
-- plan's estimate with the custom plans' after five calls. With the table's statistics gathered,
-- the generic estimate of `ORDER BY ... LIMIT p_limit` (an unknown limit counts as a tenth of the
-- organization's rows) is far above a custom plan's (21 rows), so PostgreSQL planned the page's
-- statement again on every call: 78 us a call instead of 20 (a loop of 2,000 calls on 5,000 tickets,
-- analyzed), about 110 us of PostgreSQL's CPU per list request under load. Without statistics
-- (a fresh database, as `make bench` used to measure it) the two estimates were close and the
-- generic plan was kept, which hid the cost. The generic plan is the one wanted here: walk the
-- sort's (org_id, key..., id) index from the cursor, stop at the limit. jit stays off: a page read
-- never pays back a compilation, and a large organization's generic estimate could reach the JIT
-- threshold.
-- migrate:up

ALTER FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) SET jit = off;

-- migrate:down
ALTER FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) RESET plan_cache_mode;
ALTER FUNCTION ticket_page(uuid, text, integer, smallint, timestamptz, uuid) RESET jit;
