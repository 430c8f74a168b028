-- Calls between flows (switchyard_engine::call): a session another flow
-- called records its caller and its depth (0 for a contact's outermost
-- session, the default for every earlier row). The contact's live sessions,
-- by depth, are the stack; one live session per (instance, contact, depth).
ALTER TABLE sessions ADD COLUMN parent TEXT;
ALTER TABLE sessions ADD COLUMN depth BIGINT NOT NULL DEFAULT 0;
DROP INDEX sessions_one_live;
CREATE UNIQUE INDEX sessions_one_live ON sessions (instance, contact, depth) WHERE outcome IS NULL;
