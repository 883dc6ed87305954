-- Day partitions are created by one caller at a time. Two runs loading the first intervals of a new
-- day at once both found a partition missing and both created it: the second failed when the first
-- committed between the second's checks of the table's name and of its row type's name
-- ("type processed_data_p... already exists", duplicate_object, which the handler did not name).
-- Now a caller that finds a partition missing takes a transaction-level advisory lock, so the other
-- waits for the first one's commit, and looks again before it creates anything.
CREATE OR REPLACE FUNCTION etlml_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    day date;
    parent text;
    child text;
    locked boolean := false;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR to_ts < from_ts THEN
        RAISE EXCEPTION 'etlml_ensure_partitions needs from_ts <= to_ts, got % and %', from_ts, to_ts;
    END IF;
    IF to_ts - from_ts > interval '3660 days' THEN
        RAISE EXCEPTION 'etlml_ensure_partitions: % .. % is more than ten years of day partitions', from_ts, to_ts;
    END IF;
    FOR day IN
        SELECT d::date FROM generate_series(
            date_trunc('day', from_ts AT TIME ZONE 'UTC'), date_trunc('day', to_ts AT TIME ZONE 'UTC'),
            interval '1 day'
        ) AS d
    LOOP
        FOREACH parent IN ARRAY ARRAY['processed_data', 'predictions', 'rejected_events'] LOOP
            child := parent || '_p' || to_char(day, 'YYYYMMDD');
            CONTINUE WHEN to_regclass(child) IS NOT NULL;
            IF NOT locked THEN
                -- held to the end of the caller's transaction: a caller creating partitions now
                -- has committed them (or rolled back) by the time this one goes on
                PERFORM pg_advisory_xact_lock(hashtext('etlml_ensure_partitions'));
                locked := true;
                CONTINUE WHEN to_regclass(child) IS NOT NULL;
            END IF;
            BEGIN
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', child, parent);
                EXECUTE format(
                    'ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                    parent, child, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC')
                );
                RETURN NEXT child;
            EXCEPTION WHEN duplicate_table OR duplicate_object OR unique_violation THEN
                -- a caller that created tables outside this function meanwhile: the partition
                -- exists unless the name is taken by something else, which is an error
                IF to_regclass(child) IS NULL THEN
                    RAISE;
                END IF;
            END;
        END LOOP;
    END LOOP;
END;
$$;
