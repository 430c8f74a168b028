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

-- A pin's reason detail is stored for good beside the analytics: it now
-- keeps the last two digits of the number only, as logs do
-- (`contact ***********21`, was `contact 5511*******21`).
UPDATE sessions SET reason_detail = 'contact ****' || substr(reason_detail, 13)
WHERE reason = 'pin' AND reason_detail LIKE 'contact ____*%';
UPDATE events SET reason_detail = 'contact ****' || substr(reason_detail, 13)
WHERE reason = 'pin' AND reason_detail LIKE 'contact ____*%';
