-- lock_interval.sql, waiting until the lock is free.
SELECT CASE WHEN %(shared)s
            THEN pg_advisory_xact_lock_shared(1702128749, hashtext(%(key)s))
            ELSE pg_advisory_xact_lock(1702128749, hashtext(%(key)s)) END;
