-- What a reply carries besides its text (issue #18): a file to send with the
-- text as caption ({"file": {kind, url, mimetype, file_name}}) or a menu's
-- option titles ({"choices": [...]}); NULL for plain text. Inbox entries
-- need no column: a voice note is kind 'audio' (body = transcript), a file
-- kind 'attachment' (body = its JSON reference, never the bytes).
ALTER TABLE outbox ADD COLUMN rich TEXT;
