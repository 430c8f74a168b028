-- Totals for /metrics, kept by triggers in the transaction that changes the
-- rows, so a scrape sums a few rows instead of counting whole tables. Each
-- total is spread over 16 shards (chosen by the server process of the
-- connection), so concurrent transactions seldom wait on one counter row;
-- a scrape adds the shards up. Each sum equals the COUNT(*) it replaces:
--   messages_in  = COUNT(*) FROM inbox
--   messages_out = COUNT(*) FROM outbox WHERE sent_at IS NOT NULL
--   outbox_depth = COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL
--   session_counts = COUNT(*) FROM sessions GROUP BY flow, version, COALESCE(outcome, 'live')
CREATE TABLE counters (
    name  TEXT     NOT NULL,
    shard SMALLINT NOT NULL,
    value BIGINT   NOT NULL,
    PRIMARY KEY (name, shard)
);

INSERT INTO counters (name, shard, value) VALUES
    ('messages_in', 0, (SELECT COUNT(*) FROM inbox)),
    ('messages_out', 0, (SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL)),
    ('outbox_depth', 0, (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL));

CREATE TABLE session_counts (
    flow     TEXT     NOT NULL,
    version  BIGINT   NOT NULL,
    outcome  TEXT     NOT NULL,
    shard    SMALLINT NOT NULL,
    sessions BIGINT   NOT NULL,
    PRIMARY KEY (flow, version, outcome, shard)
);

INSERT INTO session_counts (flow, version, outcome, shard, sessions)
    SELECT flow, version, COALESCE(outcome, 'live'), 0, COUNT(*) FROM sessions GROUP BY flow, version, COALESCE(outcome, 'live');

CREATE FUNCTION bump_counter(counter TEXT, delta BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counters (name, shard, value) VALUES (counter, pg_backend_pid() % 16, delta)
    ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + EXCLUDED.value;
$$;

CREATE FUNCTION bump_sessions(f TEXT, v BIGINT, o TEXT, delta BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO session_counts (flow, version, outcome, shard, sessions) VALUES (f, v, COALESCE(o, 'live'), pg_backend_pid() % 16, delta)
    ON CONFLICT (flow, version, outcome, shard) DO UPDATE SET sessions = session_counts.sessions + EXCLUDED.sessions;
$$;

CREATE FUNCTION inbox_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_counter('messages_in', 1);
    ELSE
        PERFORM bump_counter('messages_in', -1);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inbox_counts AFTER INSERT OR DELETE ON inbox FOR EACH ROW EXECUTE FUNCTION inbox_counts();

CREATE FUNCTION outbox_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sent BIGINT := 0;
    pending BIGINT := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        sent := sent + (NEW.sent_at IS NOT NULL)::int;
        pending := pending + (NEW.sent_at IS NULL AND NEW.failed_at IS NULL)::int;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        sent := sent - (OLD.sent_at IS NOT NULL)::int;
        pending := pending - (OLD.sent_at IS NULL AND OLD.failed_at IS NULL)::int;
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

CREATE TRIGGER outbox_counts AFTER INSERT OR DELETE OR UPDATE OF sent_at, failed_at ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_counts();

CREATE FUNCTION session_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.flow = NEW.flow AND OLD.version = NEW.version AND OLD.outcome IS NOT DISTINCT FROM NEW.outcome THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM bump_sessions(OLD.flow, OLD.version, OLD.outcome, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM bump_sessions(NEW.flow, NEW.version, NEW.outcome, 1);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER session_counts AFTER INSERT OR DELETE OR UPDATE OF flow, version, outcome ON sessions
    FOR EACH ROW EXECUTE FUNCTION session_counts();
