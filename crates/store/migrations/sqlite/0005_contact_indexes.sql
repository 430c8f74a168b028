-- Erasure (`sessions forget`) finds every row of a contact across instances;
-- retention finds old texts by age. Without these both scan whole tables.
CREATE INDEX sessions_by_contact_only ON sessions (contact);
CREATE INDEX sessions_ended ON sessions (ended_at) WHERE outcome IS NOT NULL;
CREATE INDEX inbox_by_contact ON inbox (contact);
CREATE INDEX inbox_by_received ON inbox (received_at);
CREATE INDEX outbox_by_contact ON outbox (contact);
CREATE INDEX outbox_by_created ON outbox (created_at);
