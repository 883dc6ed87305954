-- One computation of an interval's monitoring rows at a time (an asset-triggered run beside a sweep):
-- the second waits, then recomputes. Held until the transaction ends.
SELECT pg_advisory_xact_lock(1702128750, hashtext(%(key)s));
