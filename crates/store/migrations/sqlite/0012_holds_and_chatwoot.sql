-- Every hold (the bot silent for a contact while a person answers): why it
-- started (`handoff`: the bot handed over; `takeover`: an agent wrote
-- first), when, and how it ended (`resolved` in Chatwoot, `release` by the
-- CLI or the admin API; a hold whose `until` passed ended by its TTL).
-- `report` counts them and sums the time on hold.
-- The desk_* columns are the durable queue of Chatwoot calls a handoff
-- needs (open or pending, team, labels, the private note): retried with
-- backoff until done, so a Chatwoot outage loses nothing.
CREATE TABLE holds (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    instance           TEXT    NOT NULL,
    contact            TEXT    NOT NULL,
    cause              TEXT    NOT NULL,
    flow               TEXT,
    version            INTEGER,
    started_at         INTEGER NOT NULL,
    until              INTEGER NOT NULL,
    ended_at           INTEGER,
    ended_by           TEXT,
    desk_status        TEXT,
    desk_note          TEXT,
    desk_conversation  INTEGER,
    desk_step          INTEGER NOT NULL DEFAULT 0,
    desk_attempts      INTEGER NOT NULL DEFAULT 0,
    desk_next_at       INTEGER,
    desk_done_at       INTEGER,
    desk_error         TEXT
) STRICT;

CREATE INDEX holds_by_contact ON holds (instance, contact, seq);
CREATE INDEX holds_by_contact_only ON holds (contact);
CREATE INDEX holds_by_start ON holds (started_at);
CREATE INDEX holds_desk_due ON holds (desk_next_at) WHERE desk_status IS NOT NULL AND desk_done_at IS NULL;

-- The Chatwoot conversation Evolution's integration opened for a contact,
-- as the last `messages.upsert` named it (`chatwootConversationId`).
CREATE TABLE chatwoot_links (
    instance        TEXT    NOT NULL,
    contact         TEXT    NOT NULL,
    conversation_id INTEGER NOT NULL,
    inbox_id        INTEGER,
    seen_at         INTEGER NOT NULL,
    PRIMARY KEY (instance, contact)
) STRICT;

CREATE INDEX chatwoot_links_by_conversation ON chatwoot_links (conversation_id);
CREATE INDEX chatwoot_links_by_contact ON chatwoot_links (contact);

-- Is this fromMe message one of our own sends (an echo)? Looked up by id.
CREATE INDEX outbox_by_provider_id ON outbox (instance, provider_id) WHERE provider_id IS NOT NULL;
