-- The session counters (0019) without an upsert. SQLite compiles an
-- upsert's DO UPDATE as ABORT whatever the statement that fires the
-- trigger asks, and an ABORT anywhere in a statement that writes through a
-- trigger makes it keep a statement journal (a copy of each page it
-- touches, to undo itself alone). The turn's session update and insert are
-- OR FAIL so that they need none (the writer undoes a failed write whole),
-- but through these two triggers they still kept one: a page copy per
-- session write, about 3% of the writer thread. Same sums: the row is
-- created at zero when missing, then counted.
DROP TRIGGER session_counts_insert;
DROP TRIGGER session_counts_update;

CREATE TRIGGER session_counts_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO session_counts (flow, version, outcome, sessions)
        SELECT new.flow, new.version, COALESCE(new.outcome, 'live'), 0
        WHERE NOT EXISTS (SELECT 1 FROM session_counts WHERE flow = new.flow AND version = new.version AND outcome = COALESCE(new.outcome, 'live'));
    UPDATE session_counts SET sessions = sessions + 1
        WHERE flow = new.flow AND version = new.version AND outcome = COALESCE(new.outcome, 'live');
END;

CREATE TRIGGER session_counts_update AFTER UPDATE OF flow, version, outcome ON sessions
WHEN old.flow IS NOT new.flow OR old.version IS NOT new.version OR old.outcome IS NOT new.outcome
BEGIN
    UPDATE session_counts SET sessions = sessions - 1
        WHERE flow = old.flow AND version = old.version AND outcome = COALESCE(old.outcome, 'live');
    INSERT INTO session_counts (flow, version, outcome, sessions)
        SELECT new.flow, new.version, COALESCE(new.outcome, 'live'), 0
        WHERE NOT EXISTS (SELECT 1 FROM session_counts WHERE flow = new.flow AND version = new.version AND outcome = COALESCE(new.outcome, 'live'));
    UPDATE session_counts SET sessions = sessions + 1
        WHERE flow = new.flow AND version = new.version AND outcome = COALESCE(new.outcome, 'live');
END;
