-- `inbox_pending_order` (unprocessed entries by seq) answers no statement
-- any more: the scan for contacts nobody works on groups unprocessed
-- entries by contact (`inbox_pending` covers it), and the writer's flip
-- probes the primary key (`num_nulls`, see `pg_writer`'s `acquire`). Each
-- accept still inserted into it.
DROP INDEX inbox_pending_order;
