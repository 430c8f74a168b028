-- The /metrics counters (0008) with less work per row. Same sums.
--
-- A reply is queued unsent, so its insert changes outbox_depth alone, but
-- outbox_counts_insert updated messages_out too (adding 0): one counter row
-- rewritten for nothing per reply. A row inserted or deleted changes one
-- counter at most (a sent reply is never waiting), so the trigger now
-- updates only that one, chosen by a CASE (none for a reply given up on);
-- still one trigger program, one primary-key seek. The update trigger stays
-- as it is: a reply sent changes both counters.
--
-- A session's count was an INSERT OR IGNORE of its (flow, version,
-- outcome) row then an UPDATE of that row: one upsert does both.
DROP TRIGGER outbox_counts_insert;
DROP TRIGGER outbox_counts_delete;
DROP TRIGGER session_counts_insert;
DROP TRIGGER session_counts_update;

CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
    UPDATE counters SET value = value + 1
        WHERE name = CASE WHEN new.sent_at IS NOT NULL THEN 'messages_out' WHEN new.failed_at IS NULL THEN 'outbox_depth' END;
END;

CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
    UPDATE counters SET value = value - 1
        WHERE name = CASE WHEN old.sent_at IS NOT NULL THEN 'messages_out' WHEN old.failed_at IS NULL THEN 'outbox_depth' END;
END;

CREATE TRIGGER session_counts_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO session_counts (flow, version, outcome, sessions) VALUES (new.flow, new.version, COALESCE(new.outcome, 'live'), 1)
        ON CONFLICT (flow, version, outcome) DO UPDATE SET sessions = sessions + 1;
END;

CREATE TRIGGER session_counts_update AFTER UPDATE OF flow, version, outcome ON sessions
WHEN old.flow IS NOT new.flow OR old.version IS NOT new.version OR old.outcome IS NOT new.outcome
BEGIN
    UPDATE session_counts SET sessions = sessions - 1
        WHERE flow = old.flow AND version = old.version AND outcome = COALESCE(old.outcome, 'live');
    INSERT INTO session_counts (flow, version, outcome, sessions) VALUES (new.flow, new.version, COALESCE(new.outcome, 'live'), 1)
        ON CONFLICT (flow, version, outcome) DO UPDATE SET sessions = sessions + 1;
END;
