-- `inbox_pending_order` (unprocessed entries by seq) answers no statement:
-- the scan for contacts with waiting entries groups them by contact through
-- `inbox_pending`, the turn's read probes `inbox_pending` by contact, and
-- the flip finds its entry by rowid. Each accept inserted into it and each
-- flip deleted from it, on the single writer. (PostgreSQL dropped it in its
-- 0019.)
DROP INDEX inbox_pending_order;
