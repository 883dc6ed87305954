-- The lock of one label interval, held until the transaction ends: two runs of 15_ingest_labels for
-- the same interval never interleave their writes (the second waits, then finds the first's rows).
-- Key: (a constant for etlml's label runs, hash of the interval); not the events' lock (lock_interval.sql).
SELECT pg_advisory_xact_lock(1702128750, hashtext(%(key)s));
