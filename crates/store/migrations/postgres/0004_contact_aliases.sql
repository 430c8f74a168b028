-- A contact's two WhatsApp ids, as Evolution named them together in one
-- message (`remoteJidAlt`, `senderPn`, `previousRemoteJid`): the phone
-- number and its `@lid` alias. Rows written while only the LID was known
-- stay under it; erasure and a contact's history follow these links.
CREATE TABLE contact_aliases (
    phone   TEXT   NOT NULL,
    lid     TEXT   NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (phone, lid)
);

CREATE INDEX contact_aliases_by_lid ON contact_aliases (lid);
