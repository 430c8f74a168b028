-- Every hold (the bot silent for a contact while a person answers): why it
-- started (`handoff`: the bot handed over; `takeover`: an agent wrote
-- first), when, and how it ended (`resolved` in Chatwoot, `release` by the
-- CLI or the admin API; a hold whose `until` passed ended by its TTL).
-- `report` counts them and sums the time on hold.
-- The desk_* columns are the durable queue of Chatwoot calls a handoff
-- needs (open or pending, team, labels, the private note): retried with
-- backoff until done, so a Chatwoot outage loses nothing.
CREATE TABLE holds (
    seq                BIGSERIAL PRIMARY KEY,
    instance           TEXT    NOT NULL,
    contact            TEXT    NOT NULL,
    cause              TEXT    NOT NULL,
    flow               TEXT,
    version            BIGINT,
    started_at         BIGINT NOT NULL,
    until              BIGINT NOT NULL,
    ended_at           BIGINT,
    ended_by           TEXT,
    desk_status        TEXT,
    desk_note          TEXT,
    desk_conversation  BIGINT,
    desk_step          BIGINT NOT NULL DEFAULT 0,
    desk_attempts      BIGINT NOT NULL DEFAULT 0,
    desk_next_at       BIGINT,
    desk_done_at       BIGINT,
    desk_error         TEXT
);

CREATE INDEX holds_by_contact ON holds (instance, contact, seq);
CREATE INDEX holds_by_contact_only ON holds (contact);
CREATE INDEX holds_by_start ON holds (started_at);
CREATE INDEX holds_desk_due ON holds (desk_next_at) WHERE desk_status IS NOT NULL AND desk_done_at IS NULL;

-- The Chatwoot conversation Evolution's integration opened for a contact,
-- as the last `messages.upsert` named it (`chatwootConversationId`).
CREATE TABLE chatwoot_links (
    instance        TEXT    NOT NULL,
    contact         TEXT    NOT NULL,
    conversation_id BIGINT NOT NULL,
    inbox_id        BIGINT,
    seen_at         BIGINT NOT NULL,
    PRIMARY KEY (instance, contact)
);

CREATE INDEX chatwoot_links_by_conversation ON chatwoot_links (conversation_id);
CREATE INDEX chatwoot_links_by_contact ON chatwoot_links (contact);

-- Is this fromMe message one of our own sends (an echo)? Looked up by id.
CREATE INDEX outbox_by_provider_id ON outbox (instance, provider_id) WHERE provider_id IS NOT NULL;
