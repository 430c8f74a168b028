-- Flow versions published as documents (`switchyard flows publish`,
-- `POST /api/flows`): one row per version, never updated. The publish's
-- audit record is written in the same transaction, so the audit seq that
-- every `serve` polls also announces new versions.
CREATE TABLE flow_documents (
    flow         TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    fingerprint  TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    published_at INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    PRIMARY KEY (flow, version)
) STRICT;
