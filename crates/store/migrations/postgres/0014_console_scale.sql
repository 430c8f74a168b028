-- The console at a million sessions (issue #17). The overview counts
-- sessions started per flow and version by day over the last 8 days, and
-- the traffic view per flow and version over a window: with started_at,
-- flow and version in the index both are read from the index alone, not
-- from the rows (the old index had started_at only, so every start in the
-- window cost a row lookup).
DROP INDEX sessions_by_start;
CREATE INDEX sessions_by_start ON sessions (started_at, flow, version);
