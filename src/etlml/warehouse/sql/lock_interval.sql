-- The per-interval lock of the rows of one data interval, held until the transaction ends: a load
-- takes it exclusively, stores and rescores share it. Key: (a constant for etlml, hash of the interval).
SELECT CASE WHEN %(shared)s
            THEN pg_try_advisory_xact_lock_shared(1702128749, hashtext(%(key)s))
            ELSE pg_try_advisory_xact_lock(1702128749, hashtext(%(key)s)) END;
