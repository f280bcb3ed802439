-- The outbox stops sending a NOTIFY from every transaction that adds events (issue 16).
--
-- PostgreSQL takes a lock of the whole database at the commit of a transaction that notified
-- (commits that notify queue behind each other), and signals every backend of the database
-- that listens on any channel: each relay and mailer of each replica woke, read the queue and
-- went back to sleep, on every write of every service. Measured with pgbench on a scratch
-- database: an insert with its NOTIFY cost 90 us of PostgreSQL's CPU per commit with no
-- listener and 185-189 us with five idle listeners on other channels (the stack runs five).
-- The relay now wakes after each write its own process answered (shared.messaging.relay,
-- wake_relay_after_write) and polls every RELAY_POLL_INTERVAL_S for the rest. The mail
-- outbox keeps its NOTIFY: an email is rare, and its listeners no longer wake for events.
-- migrate:up
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();

-- migrate:down
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
