-- The PostgreSQL schema: the same tables as SQLite's migrations 0001-0004
-- (timestamps are Unix milliseconds, UTC), plus what several `serve`
-- processes sharing one database need: contact leases and outbox claims.

CREATE TABLE sessions (
    id            TEXT   PRIMARY KEY,
    instance      TEXT   NOT NULL,
    contact       TEXT   NOT NULL,
    flow          TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    fingerprint   TEXT   NOT NULL,
    reason        TEXT   NOT NULL,
    reason_detail TEXT,
    step          TEXT   NOT NULL,
    data          TEXT   NOT NULL, -- JSON object of strings
    attempts      BIGINT NOT NULL,
    turns         BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    last_input_at BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    outcome       TEXT,
    ended_at      BIGINT,
    revision      BIGINT NOT NULL,
    CHECK ((outcome IS NULL) = (ended_at IS NULL))
);

-- At most one live session per contact and instance, across all processes.
CREATE UNIQUE INDEX sessions_one_live ON sessions (instance, contact) WHERE outcome IS NULL;
CREATE INDEX sessions_due ON sessions (expires_at) WHERE outcome IS NULL;
CREATE INDEX sessions_by_contact ON sessions (instance, contact, started_at);
CREATE INDEX sessions_by_flow ON sessions (flow, version, started_at);

CREATE TABLE events (
    seq           BIGSERIAL PRIMARY KEY,
    session_id    TEXT   NOT NULL,
    flow          TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    at            BIGINT NOT NULL,
    step          TEXT,
    kind          TEXT   NOT NULL,
    reason        TEXT,
    reason_detail TEXT,
    fingerprint   TEXT,
    detail        TEXT
);

CREATE INDEX events_by_session ON events (session_id, seq);
CREATE INDEX events_by_flow ON events (flow, version, at);

CREATE TABLE handoffs (
    instance TEXT   NOT NULL,
    contact  TEXT   NOT NULL,
    until    BIGINT NOT NULL,
    PRIMARY KEY (instance, contact)
);

-- The inbox: (instance, message_id) is unique, so a redelivery landing on
-- any process is recognised and dropped.
CREATE TABLE inbox (
    seq          BIGSERIAL PRIMARY KEY,
    instance     TEXT   NOT NULL,
    message_id   TEXT   NOT NULL,
    contact      TEXT   NOT NULL,
    reply_to     TEXT   NOT NULL,
    kind         TEXT   NOT NULL, -- text | unsupported | operator
    body         TEXT,
    sent_at      BIGINT,
    received_at  BIGINT NOT NULL,
    processed_at BIGINT,
    UNIQUE (instance, message_id)
);

CREATE INDEX inbox_pending ON inbox (instance, contact, sent_at, seq) WHERE processed_at IS NULL;
CREATE INDEX inbox_pending_order ON inbox (seq) WHERE processed_at IS NULL;

-- Which process is working through a contact's inbox, until when. Only an
-- optimisation (it keeps two processes from computing the same turn): the
-- exactly-once guarantee is the conditional update of inbox.processed_at
-- and the session revision check, in the turn's transaction.
CREATE TABLE contact_leases (
    instance TEXT   NOT NULL,
    contact  TEXT   NOT NULL,
    owner    TEXT   NOT NULL,
    until    BIGINT NOT NULL,
    PRIMARY KEY (instance, contact)
);

-- The outbox. A process claims the rows it is about to send (claimed_by,
-- claim_until) with FOR UPDATE SKIP LOCKED, so each reply goes out through
-- one process; a claim left by a process that died lapses at claim_until.
CREATE TABLE outbox (
    seq             BIGSERIAL PRIMARY KEY,
    instance        TEXT   NOT NULL,
    contact         TEXT   NOT NULL,
    reply_to        TEXT   NOT NULL,
    text            TEXT   NOT NULL,
    session_id      TEXT,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    sent_at         BIGINT,
    provider_id     TEXT,
    failed_at       BIGINT,
    claimed_by      TEXT,
    claim_until     BIGINT
);

CREATE INDEX outbox_waiting ON outbox (instance, contact, seq) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE TABLE policy (
    flow       TEXT   PRIMARY KEY,
    rules      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every transaction that appends to the audit log first takes one advisory
-- transaction lock, so audit seq order is commit order: a server that saw
-- revision N has seen every change up to N.
CREATE TABLE audit (
    seq    BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT   NOT NULL,
    action TEXT   NOT NULL,
    flow   TEXT,
    reason TEXT   NOT NULL,
    before TEXT,
    after  TEXT
);

CREATE INDEX audit_by_flow ON audit (flow, at);
CREATE INDEX audit_by_time ON audit (at);

CREATE TABLE split_assignments (
    contact     TEXT   NOT NULL,
    flow        TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (contact, flow)
);
