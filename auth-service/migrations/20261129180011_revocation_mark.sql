-- Every revocation mark the gateway reads from Redis, kept here too (issue 11): PostgreSQL is
-- the source of truth, and a Redis that lost its data is rebuilt from this table.
-- migrate:up
CREATE TABLE revocation_mark (
    key        text PRIMARY KEY,                 -- the Redis key (shared.redis_keys)
    value      text NOT NULL,                    -- the Redis value
    raise_only boolean NOT NULL DEFAULT false,   -- numeric mark that only moves forward
    expires_at timestamptz NOT NULL              -- after this the key is not needed any more
);
CREATE INDEX revocation_mark_expires_idx ON revocation_mark (expires_at);

-- migrate:down
DROP TABLE revocation_mark;
