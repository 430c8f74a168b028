-- Sessions: one row per customer journey through one flow version.
-- Timestamps are Unix milliseconds (UTC).
CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY,
    instance      TEXT    NOT NULL,
    contact       TEXT    NOT NULL,
    flow          TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    fingerprint   TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    reason_detail TEXT,
    step          TEXT    NOT NULL,
    data          TEXT    NOT NULL, -- JSON object of strings
    attempts      INTEGER NOT NULL,
    turns         INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    last_input_at INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    outcome       TEXT,
    ended_at      INTEGER,
    revision      INTEGER NOT NULL,
    CHECK ((outcome IS NULL) = (ended_at IS NULL))
) STRICT;

-- At most one live session per contact and instance.
CREATE UNIQUE INDEX sessions_one_live ON sessions (instance, contact) WHERE outcome IS NULL;
-- The expiry sweeper's scan.
CREATE INDEX sessions_due ON sessions (expires_at) WHERE outcome IS NULL;
-- A contact's history.
CREATE INDEX sessions_by_contact ON sessions (instance, contact, started_at);
-- "What ran when".
CREATE INDEX sessions_by_flow ON sessions (flow, version, started_at);

-- The append-only event log.
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    TEXT    NOT NULL,
    flow          TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    step          TEXT,
    kind          TEXT    NOT NULL,
    reason        TEXT,
    reason_detail TEXT,
    fingerprint   TEXT,
    detail        TEXT
) STRICT;

CREATE INDEX events_by_session ON events (session_id, seq);
CREATE INDEX events_by_flow ON events (flow, version, at);

-- Contacts a human is serving: the bot is silent until `until`.
CREATE TABLE handoffs (
    instance TEXT    NOT NULL,
    contact  TEXT    NOT NULL,
    until    INTEGER NOT NULL,
    PRIMARY KEY (instance, contact)
) STRICT;
