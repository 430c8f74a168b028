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
    flow  TEXT   NOT NULL,
    hour  BIGINT NOT NULL, -- started_at / 3600000
    tally TEXT   NOT NULL,
    PRIMARY KEY (flow, hour)
);

CREATE FUNCTION report_hours_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM report_hours WHERE flow = OLD.flow AND hour = OLD.started_at / 3600000;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        DELETE FROM report_hours WHERE flow = NEW.flow AND hour = NEW.started_at / 3600000;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER report_hours_insert_delete AFTER INSERT OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION report_hours_drop();

-- Live sessions' hours never have a row, so only a change to a finished
-- session (or one that finishes it) needs to drop one.
CREATE TRIGGER report_hours_update AFTER UPDATE OF flow, version, instance, reason, step, turns, started_at, outcome, ended_at ON sessions
    FOR EACH ROW WHEN (OLD.outcome IS NOT NULL OR NEW.outcome IS NOT NULL) EXECUTE FUNCTION report_hours_drop();
