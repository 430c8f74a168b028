-- As SQLite's 0013: a reply's file or menu options as JSON text; NULL for
-- plain text. Inbox kinds 'audio' and 'attachment' reuse kind/body.
ALTER TABLE outbox ADD COLUMN rich TEXT;
