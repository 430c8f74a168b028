-- The rollout policy: one row per flow with rules, as JSON (see policy.rs).
CREATE TABLE policy (
    flow       TEXT    PRIMARY KEY,
    rules      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Append-only audit log: every policy change (who, when, why, before,
-- after) and every deploy manifest recorded by `serve` at start. Its highest
-- seq is the policy revision that running servers poll.
CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    flow   TEXT,
    reason TEXT    NOT NULL,
    before TEXT,
    after  TEXT
) STRICT;

CREATE INDEX audit_by_flow ON audit (flow, at);
CREATE INDEX audit_by_time ON audit (at);
