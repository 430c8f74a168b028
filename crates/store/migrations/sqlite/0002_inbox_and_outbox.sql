-- The inbox: every inbound message, stored before the webhook is
-- acknowledged. (instance, message_id) is unique: redeliveries, even
-- minutes late, are recognised and dropped.
CREATE TABLE inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance     TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    contact      TEXT    NOT NULL,
    reply_to     TEXT    NOT NULL,
    kind         TEXT    NOT NULL, -- text | unsupported | operator
    body         TEXT,             -- the text, or the unsupported content's kind
    sent_at      INTEGER,          -- the customer's clock (ordering within a contact)
    received_at  INTEGER NOT NULL,
    processed_at INTEGER,
    UNIQUE (instance, message_id)
) STRICT;

CREATE INDEX inbox_pending ON inbox (instance, contact, sent_at, seq) WHERE processed_at IS NULL;
CREATE INDEX inbox_pending_order ON inbox (seq) WHERE processed_at IS NULL;

-- The outbox: replies waiting for delivery, sent in seq order per contact.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    instance        TEXT    NOT NULL,
    contact         TEXT    NOT NULL,
    reply_to        TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    session_id      TEXT,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER,
    provider_id     TEXT,
    failed_at       INTEGER
) STRICT;

CREATE INDEX outbox_waiting ON outbox (instance, contact, seq) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
