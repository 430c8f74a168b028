-- A turn's session update as a HOT update (heap-only: the new row version on
-- the same page, no index entry). Every turn moved `expires_at`, the key of
-- `sessions_due`, so each update inserted into all of the table's indexes
-- (~9.6 WAL records per row, the largest statement cost under load). The
-- sweep's index is now keyed on the expiry's five-minute bucket, which a
-- turn changes only when it crosses into the next bucket, and the table
-- keeps room on its pages for the new versions (fillfactor).
--
-- `sessions_due` also states `depth = 0`, as only the sweep does: a
-- per-contact read or the writer's update (`outcome IS NULL` and an id or
-- contact) cannot take it for a walk of every live session, which the
-- planner did on a fresh, never-analysed table with the compact bucket
-- index (branch pgh, the sixth session: 15 M index entries read at 1 000
-- contacts). The drain view and the live counts read the live rows through
-- `sessions_one_live`.
ALTER TABLE sessions ADD COLUMN expires_bucket BIGINT GENERATED ALWAYS AS (expires_at / 300000) STORED;
DROP INDEX sessions_due;
CREATE INDEX sessions_due ON sessions (expires_bucket) WHERE outcome IS NULL AND depth = 0;
ALTER TABLE sessions SET (fillfactor = 80);
