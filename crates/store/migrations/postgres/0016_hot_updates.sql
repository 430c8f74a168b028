-- Row writes a message makes without touching an index (HOT updates, issue
-- #14). PostgreSQL writes an update in place on its page, with no index
-- entry, only when no indexed column (key or partial-index predicate)
-- changed and the new row version fits on the same page.
--
-- Outbox: the claim and the attempt mark change no indexed column; room on
-- the page of a freshly inserted reply for their row versions.
ALTER TABLE outbox SET (fillfactor = 50);

-- Contact leases: a released lease is kept (until = 0, lapsed) and the next
-- one updates it in place, instead of a row inserted and deleted per
-- message. Erasure deletes the contact's row (privacy.rs lists the table).
ALTER TABLE contact_leases SET (fillfactor = 50);
