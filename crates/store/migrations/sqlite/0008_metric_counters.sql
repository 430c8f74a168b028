-- Totals for /metrics, kept by triggers in the transaction that changes the
-- rows, so a scrape reads a handful of rows instead of counting whole tables.
-- Each equals the COUNT(*) it replaces:
--   messages_in  = COUNT(*) FROM inbox
--   messages_out = COUNT(*) FROM outbox WHERE sent_at IS NOT NULL
--   outbox_depth = COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL
--   session_counts = COUNT(*) FROM sessions GROUP BY flow, version, COALESCE(outcome, 'live')
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO counters (name, value) VALUES
    ('messages_in', (SELECT COUNT(*) FROM inbox)),
    ('messages_out', (SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL)),
    ('outbox_depth', (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL));

CREATE TABLE session_counts (
    flow     TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    outcome  TEXT    NOT NULL,
    sessions INTEGER NOT NULL,
    PRIMARY KEY (flow, version, outcome)
) WITHOUT ROWID;

INSERT INTO session_counts (flow, version, outcome, sessions)
    SELECT flow, version, COALESCE(outcome, 'live'), COUNT(*) FROM sessions GROUP BY flow, version, COALESCE(outcome, 'live');

CREATE TRIGGER inbox_counts_insert AFTER INSERT ON inbox BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'messages_in';
END;

CREATE TRIGGER inbox_counts_delete AFTER DELETE ON inbox BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'messages_in';
END;

CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
    UPDATE counters SET value = value + (new.sent_at IS NOT NULL) WHERE name = 'messages_out';
    UPDATE counters SET value = value + (new.sent_at IS NULL AND new.failed_at IS NULL) WHERE name = 'outbox_depth';
END;

CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
    UPDATE counters SET value = value - (old.sent_at IS NOT NULL) WHERE name = 'messages_out';
    UPDATE counters SET value = value - (old.sent_at IS NULL AND old.failed_at IS NULL) WHERE name = 'outbox_depth';
END;

CREATE TRIGGER outbox_counts_update AFTER UPDATE OF sent_at, failed_at ON outbox
WHEN (old.sent_at IS NULL) <> (new.sent_at IS NULL) OR (old.failed_at IS NULL) <> (new.failed_at IS NULL)
BEGIN
    UPDATE counters SET value = value + (new.sent_at IS NOT NULL) - (old.sent_at IS NOT NULL) WHERE name = 'messages_out';
    UPDATE counters SET value = value + (new.sent_at IS NULL AND new.failed_at IS NULL) - (old.sent_at IS NULL AND old.failed_at IS NULL)
        WHERE name = 'outbox_depth';
END;

CREATE TRIGGER session_counts_insert AFTER INSERT ON sessions BEGIN
    INSERT OR IGNORE INTO session_counts (flow, version, outcome, sessions) VALUES (new.flow, new.version, COALESCE(new.outcome, 'live'), 0);
    UPDATE session_counts SET sessions = sessions + 1
        WHERE flow = new.flow AND version = new.version AND outcome = COALESCE(new.outcome, 'live');
END;

CREATE TRIGGER session_counts_delete AFTER DELETE ON sessions BEGIN
    UPDATE session_counts SET sessions = sessions - 1
        WHERE flow = old.flow AND version = old.version AND outcome = COALESCE(old.outcome, 'live');
END;

CREATE TRIGGER session_counts_update AFTER UPDATE OF flow, version, outcome ON sessions
WHEN old.flow IS NOT new.flow OR old.version IS NOT new.version OR old.outcome IS NOT new.outcome
BEGIN
    UPDATE session_counts SET sessions = sessions - 1
        WHERE flow = old.flow AND version = old.version AND outcome = COALESCE(old.outcome, 'live');
    INSERT OR IGNORE INTO session_counts (flow, version, outcome, sessions) VALUES (new.flow, new.version, COALESCE(new.outcome, 'live'), 0);
    UPDATE session_counts SET sessions = sessions + 1
        WHERE flow = new.flow AND version = new.version AND outcome = COALESCE(new.outcome, 'live');
END;
