-- Counter shards two nodes' writers cannot share. The /metrics totals and
-- the session counts were bumped on the shard `pg_backend_pid() % 16`, so two
-- nodes' group-commit writers had the same shard one run in sixteen: then
-- each batch waited for the other's commit on the shared rows, and, bumping
-- `messages_out` and `outbox_depth` in different orders, they deadlocked
-- (PostgreSQL broke it after `deadlock_timeout`, a second). A writer now
-- claims a free shard when it opens its connection (a session advisory lock
-- per shard, `acquire` in pg_writer.rs) and names it in the session
-- setting `switchyard.counter_shard`; other connections keep the old rule.
CREATE FUNCTION counter_shard() RETURNS INT LANGUAGE sql STABLE AS $$
    SELECT COALESCE(NULLIF(current_setting('switchyard.counter_shard', true), '')::INT, pg_backend_pid() % 16);
$$;

CREATE OR REPLACE FUNCTION bump_counter(counter TEXT, delta BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counters (name, shard, value) VALUES (counter, counter_shard(), delta)
    ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + EXCLUDED.value;
$$;

CREATE OR REPLACE FUNCTION bump_sessions(f TEXT, v BIGINT, o TEXT, delta BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO session_counts (flow, version, outcome, shard, sessions) VALUES (f, v, COALESCE(o, 'live'), counter_shard(), delta)
    ON CONFLICT (flow, version, outcome, shard) DO UPDATE SET sessions = session_counts.sessions + EXCLUDED.sessions;
$$;

-- 0015's function with the shard from `counter_shard()`.
CREATE OR REPLACE FUNCTION session_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO session_counts (flow, version, outcome, shard, sessions)
            SELECT flow, version, COALESCE(outcome, 'live'), counter_shard(), COUNT(*) FROM new_rows
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (flow, version, outcome, shard) DO UPDATE SET sessions = session_counts.sessions + EXCLUDED.sessions;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO session_counts (flow, version, outcome, shard, sessions)
            SELECT flow, version, COALESCE(outcome, 'live'), counter_shard(), -COUNT(*) FROM old_rows
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (flow, version, outcome, shard) DO UPDATE SET sessions = session_counts.sessions + EXCLUDED.sessions;
    ELSE
        INSERT INTO session_counts (flow, version, outcome, shard, sessions)
            SELECT flow, version, outcome, counter_shard(), SUM(delta) FROM (
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
