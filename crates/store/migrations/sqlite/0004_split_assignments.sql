-- Assignment memory: the version a split gave a contact, per flow, so that a
-- split with memory_days keeps the contact there even when weights change.
CREATE TABLE split_assignments (
    contact     TEXT    NOT NULL,
    flow        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    assigned_at INTEGER NOT NULL,
    PRIMARY KEY (contact, flow)
) STRICT;
