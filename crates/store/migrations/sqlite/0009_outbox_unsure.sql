-- A send whose outcome is unknown must not be repeated blindly.
-- attempted_at: when the latest send attempt began, written before the
-- request goes out and cleared when its outcome is recorded; a row that
-- still has it after a crash may have been delivered.
-- unsure_since: when the earliest attempt whose outcome is unknown began (a
-- timeout, a dropped connection, a crash mid-send); the sender asks
-- Evolution whether the text went out since then before sending again.
ALTER TABLE outbox ADD COLUMN attempted_at INTEGER;
ALTER TABLE outbox ADD COLUMN unsure_since INTEGER;
