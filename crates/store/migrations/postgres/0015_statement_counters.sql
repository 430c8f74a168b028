-- The /metrics totals (0005) kept once per statement instead of once per row.
-- The group-commit writer changes many rows per statement (one multi-row
-- insert of a batch's inbox entries, replies, sessions), and the per-row
-- plpgsql triggers were ~17% of PostgreSQL's CPU under load; a statement
-- trigger reads the statement's transition tables once and bumps each
-- counter once. Same sums, same shards (0005's comment still holds).
-- UPDATE triggers with transition tables cannot name columns, so the outbox
-- one now runs for every UPDATE statement (claims too): it counts rows, it
-- writes only when a total moved.
DROP TRIGGER inbox_counts ON inbox;
DROP TRIGGER outbox_counts ON outbox;
DROP TRIGGER session_counts ON sessions;

CREATE OR REPLACE FUNCTION inbox_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT COUNT(*) INTO delta FROM new_rows;
    ELSE
        SELECT -COUNT(*) INTO delta FROM old_rows;
    END IF;
    IF delta <> 0 THEN
        PERFORM bump_counter('messages_in', delta);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inbox_counts_insert AFTER INSERT ON inbox
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION inbox_counts();
CREATE TRIGGER inbox_counts_delete AFTER DELETE ON inbox
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION inbox_counts();

CREATE OR REPLACE FUNCTION outbox_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sent BIGINT := 0;
    pending BIGINT := 0;
    s BIGINT;
    p BIGINT;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT COUNT(*) FILTER (WHERE sent_at IS NOT NULL), COUNT(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL)
            INTO s, p FROM new_rows;
        sent := sent + s;
        pending := pending + p;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT COUNT(*) FILTER (WHERE sent_at IS NOT NULL), COUNT(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL)
            INTO s, p FROM old_rows;
        sent := sent - s;
        pending := pending - p;
    END IF;
    IF sent <> 0 THEN
        PERFORM bump_counter('messages_out', sent);
    END IF;
    IF pending <> 0 THEN
        PERFORM bump_counter('outbox_depth', pending);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION outbox_counts();
CREATE TRIGGER outbox_counts_update AFTER UPDATE ON outbox
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION outbox_counts();
CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION outbox_counts();

-- Each (flow, version, outcome) moves once per statement, in key order (two
-- transactions bumping the same shard rows lock them in the same order).
CREATE OR REPLACE FUNCTION session_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO session_counts (flow, version, outcome, shard, sessions)
            SELECT flow, version, COALESCE(outcome, 'live'), pg_backend_pid() % 16, COUNT(*) FROM new_rows
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (flow, version, outcome, shard) DO UPDATE SET sessions = session_counts.sessions + EXCLUDED.sessions;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO session_counts (flow, version, outcome, shard, sessions)
            SELECT flow, version, COALESCE(outcome, 'live'), pg_backend_pid() % 16, -COUNT(*) FROM old_rows
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (flow, version, outcome, shard) DO UPDATE SET sessions = session_counts.sessions + EXCLUDED.sessions;
    ELSE
        INSERT INTO session_counts (flow, version, outcome, shard, sessions)
            SELECT flow, version, outcome, pg_backend_pid() % 16, SUM(delta) FROM (
                SELECT flow, version, COALESCE(outcome, 'live') AS outcome, 1 AS delta FROM new_rows
                UNION ALL
                SELECT flow, version, COALESCE(outcome, 'live'), -1 FROM old_rows
            ) moved
            GROUP BY 1, 2, 3 HAVING SUM(delta) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (flow, version, outcome, shard) DO UPDATE SET sessions = session_counts.sessions + EXCLUDED.sessions;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER session_counts_insert AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION session_counts();
CREATE TRIGGER session_counts_update AFTER UPDATE ON sessions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION session_counts();
CREATE TRIGGER session_counts_delete AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION session_counts();
