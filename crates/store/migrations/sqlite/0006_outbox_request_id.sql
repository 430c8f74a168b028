-- The request id (the inbound message id) of the turn that queued a reply,
-- so the sender's log line ties the send to its webhook without a lookup.
ALTER TABLE outbox ADD COLUMN request_id TEXT;
