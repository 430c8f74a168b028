-- The console's reads at scale (a million sessions). Reports and the
-- overview select sessions by flow and start time without a version
-- (sessions_by_flow leads with version, so they read every session of the
-- flow), and count starts across flows by time; the health view counts
-- replies given up on by time, which are few (a partial index).
CREATE INDEX sessions_by_flow_start ON sessions (flow, started_at);
CREATE INDEX sessions_by_start ON sessions (started_at);
CREATE INDEX outbox_failed ON outbox (failed_at) WHERE failed_at IS NOT NULL;

-- Hourly rollups of the flow report: one row per (flow, hour of session
-- start) with the figures of the sessions that started in that hour, as a
-- JSON tally the report merges (switchyard's views::rollup). A row is
-- written only for an hour whose sessions have all finished, so later
-- turns cannot change it; a session inserted, deleted or changed into an
-- hour that has a row deletes the row (it is recomputed), so a row never
-- disagrees with the event log.
CREATE TABLE report_hours (
    flow  TEXT    NOT NULL,
    hour  INTEGER NOT NULL, -- started_at / 3600000
    tally TEXT    NOT NULL,
    PRIMARY KEY (flow, hour)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER report_hours_insert AFTER INSERT ON sessions BEGIN
    DELETE FROM report_hours WHERE flow = new.flow AND hour = new.started_at / 3600000;
END;

CREATE TRIGGER report_hours_delete AFTER DELETE ON sessions BEGIN
    DELETE FROM report_hours WHERE flow = old.flow AND hour = old.started_at / 3600000;
END;

-- Live sessions' hours never have a row, so only a change to a finished
-- session (or one that finishes it, for safety) needs to drop one.
CREATE TRIGGER report_hours_update AFTER UPDATE OF flow, version, instance, reason, step, turns, started_at, outcome, ended_at ON sessions
WHEN old.outcome IS NOT NULL OR new.outcome IS NOT NULL
BEGIN
    DELETE FROM report_hours WHERE flow = old.flow AND hour = old.started_at / 3600000;
    DELETE FROM report_hours WHERE flow = new.flow AND hour = new.started_at / 3600000;
END;
