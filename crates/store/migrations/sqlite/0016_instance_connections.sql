-- Each Evolution instance's WhatsApp connection as its last
-- `connection.update` webhook said (`open`, `connecting`, `close`), for the
-- console's health page: the state, Evolution's statusReason, when it was
-- heard, and since when the instance has been in that state. An update
-- older than the stored one (a delayed retry) does not overwrite it.
CREATE TABLE instance_connections (
    instance      TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL,
    status_reason INTEGER,
    heard_at      INTEGER NOT NULL,
    since         INTEGER NOT NULL
) STRICT;
