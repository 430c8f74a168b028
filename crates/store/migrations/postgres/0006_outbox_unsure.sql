-- As SQLite's 0009: attempted_at is when the latest send attempt began
-- (cleared when its outcome is recorded), unsure_since when the earliest
-- attempt whose outcome is unknown began. A claim taken over from a process
-- that died mid-send keeps attempted_at, so the taker knows the reply may
-- already be out.
ALTER TABLE outbox ADD COLUMN attempted_at BIGINT;
ALTER TABLE outbox ADD COLUMN unsure_since BIGINT;
