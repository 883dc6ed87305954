-- processed_data's key becomes (interval_start, event_id): the interval first, as predictions' key.
--
-- With the event id first, an interval's random ids were spread over the whole key of its day, so the
-- second load of a day inserted between the first one's keys: every leaf page split, and the bigger the
-- day the slower. With the interval first, each interval owns a range of the key that starts past the
-- ones before it, so a load into a day that already holds intervals writes the key as it would into an
-- empty one. The key also serves every query by interval, so the separate interval_start index goes.
--
-- Lookups by event id alone (the redelivery check, label matching) now read the ids of the intervals in
-- their window, in key order, instead of probing an index per id: README "Partitions and retention".
-- Each day partition's key is rebuilt: about 2.5 s per million rows with the ANALYZE (README), under an
-- exclusive lock (pause the DAGs while it runs).
ALTER TABLE processed_data DROP CONSTRAINT processed_data_pkey;
ALTER TABLE processed_data ADD PRIMARY KEY (interval_start, event_id);
DROP INDEX processed_data_interval_idx;
ANALYZE processed_data;

-- The redelivery check's lock, held until the transaction ends. No key spans two intervals, so two
-- loads at once (a backfill beside the scheduled run) could each check before the other commits and
-- both store an id; under this lock the second checks after the first has committed, and sees its
-- rows. Only the check and the commit after it wait: the loads' COPYs run side by side.
-- Key: 'etlr' (as lock_interval.sql's 'etlm'), 1.
CREATE FUNCTION etlml_lock_redelivery_check() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(1702128754, 1) $$;

-- Does another interval starting in [window_start, window_end) hold an id of the interval starting at
-- loaded_start? (sql/loaded_redelivered.sql, after a load's straight COPY.) The intervals the window
-- holds are found by skipping along the key, one index descent each, on either side of loaded_start.
-- Up to 8 of them: the loaded ids and each interval's ids are both read from the key in event-id order
-- and merged (no sort, no hash, no probe per id; it stops at the first match). More: one hash join of
-- the loaded ids with the whole window's. Takes the redelivery check's lock first. Runs with the
-- caller's rights.
CREATE FUNCTION etlml_window_holds_loaded_ids(
    loaded_start timestamptz, window_start timestamptz, window_end timestamptz
)
RETURNS boolean
-- VOLATILE (the default): its reads after the lock take a snapshot of their own, which sees the loads
-- that committed while it waited. The SET clauses keep the plans described above; left to itself the
-- planner may sort, probe per id, or run the merge in parallel workers that each read the loaded ids.
LANGUAGE plpgsql
SET enable_nestloop = off SET enable_hashjoin = off SET enable_sort = off SET max_parallel_workers_per_gather = 0 AS $$
DECLARE
    held timestamptz[] := ARRAY[]::timestamptz[];
    side record;
    next_start timestamptz;
    one timestamptz;
BEGIN
    PERFORM etlml_lock_redelivery_check();
    -- either side of loaded_start: the first interval start after `after`, then the next, ...
    FOR side IN SELECT * FROM (VALUES (window_start, loaded_start, '-infinity'::timestamptz),
                                      (loaded_start, window_end, loaded_start)) AS s (lo, hi, after)
    LOOP
        next_start := side.after;
        LOOP
            SELECT p.interval_start INTO next_start FROM processed_data AS p
            WHERE p.interval_start >= side.lo AND p.interval_start > next_start AND p.interval_start < side.hi
            ORDER BY p.interval_start LIMIT 1;
            EXIT WHEN NOT FOUND OR cardinality(held) > 8;
            held := held || next_start;
        END LOOP;
    END LOOP;
    IF cardinality(held) > 8 THEN
        PERFORM set_config('enable_hashjoin', 'on', true);  -- until the function returns
        RETURN EXISTS (
            SELECT 1 FROM processed_data AS n JOIN processed_data AS p ON p.event_id = n.event_id
            WHERE n.interval_start = loaded_start
              AND p.interval_start >= window_start AND p.interval_start < window_end
              AND p.interval_start <> loaded_start
        );
    END IF;
    FOREACH one IN ARRAY held LOOP
        IF EXISTS (SELECT 1 FROM processed_data AS n JOIN processed_data AS p ON p.event_id = n.event_id
                   WHERE n.interval_start = loaded_start AND p.interval_start = one) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END;
$$;
