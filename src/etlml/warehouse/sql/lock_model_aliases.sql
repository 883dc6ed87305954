-- Serializes registry changes: one promote/shadow/rollback at a time.
SELECT pg_advisory_xact_lock(4242002);
