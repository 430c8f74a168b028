-- attempt_by: which `serve` process recorded the reply's attempt when it
-- committed the turn that queued it (a random token per process; NULL for
-- an attempt the sender wrote itself, or none). Such a reply is handed to
-- that process's sender with its attempt already on record, so no write
-- stands between the turn's commit and the send. To any other process
-- (after a crash) it reads as an attempt cut short: unsure, checked with
-- Evolution before it is sent. A graceful stop takes back the marks of the
-- replies it never requested. SQLite only: a PostgreSQL claim marks the
-- attempts (`claim_due`).
ALTER TABLE outbox ADD COLUMN attempt_by INTEGER;
