-- Shared by every service schema: the outbox of emails, beside the outbox of events.
-- A row is written in the transaction of the change that causes the email; the mailer
-- (shared.mail.sender) sends it over SMTP and marks it sent. The rendered bodies may hold a
-- single-use token: they are erased once the message is sent, and sent rows are purged.
-- migrate:up
CREATE TABLE mail_outbox (
    id              uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    template        text NOT NULL,
    recipient       text NOT NULL,
    message_id      text NOT NULL UNIQUE,
    subject         text NOT NULL,
    text_body       text,
    html_body       text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    sent_at         timestamptz,
    failed_at       timestamptz
);
-- The mailer scans due rows in commit order; the purge scans finished ones by age.
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at, seq) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_done_idx ON mail_outbox (created_at) WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;

-- Wakes the mailer when a transaction that added an email commits (polling covers a miss).
CREATE FUNCTION mail_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_mail', '');
    RETURN NULL;
END $$;
CREATE TRIGGER mail_outbox_notify AFTER INSERT ON mail_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION mail_outbox_notify();

-- migrate:down
DROP TRIGGER mail_outbox_notify ON mail_outbox;
DROP FUNCTION mail_outbox_notify();
DROP TABLE mail_outbox;
