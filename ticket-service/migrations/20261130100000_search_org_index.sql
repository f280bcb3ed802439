-- One full-text index per organization's live tickets: GIN over (ARRAY[org_id], search), partial
-- on deleted_at IS NULL. A search condition `ARRAY[org_id] @> ARRAY[<org>] AND search @@ <q>`
-- intersects the organization's posting list with the term's inside the index, so a term rare
-- in one organization costs what its matches there cost, however common it is in others (the
-- index on search alone returned every organization's matches, filtered afterwards). It serves
-- `search @@ <q>` alone too (ticket_search_ids, kept for the previous release), so it replaces
-- ticket_search_idx. Built without blocking writes; re-runnable after a failed build.
-- migrate:up transaction:false
DROP INDEX CONCURRENTLY IF EXISTS ticket_org_search_idx;
CREATE INDEX CONCURRENTLY ticket_org_search_idx ON ticket USING gin ((ARRAY[org_id]), search)
    WHERE deleted_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS ticket_search_idx;

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS ticket_search_idx;
CREATE INDEX CONCURRENTLY ticket_search_idx ON ticket USING gin (search);
DROP INDEX CONCURRENTLY IF EXISTS ticket_org_search_idx;
