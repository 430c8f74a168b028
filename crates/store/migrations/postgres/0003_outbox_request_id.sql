-- The request id (the inbound message id) of the turn that queued a reply,
-- as SQLite's 0006.
ALTER TABLE outbox ADD COLUMN request_id TEXT;
