-- processed_data, predictions and rejected_events become partitioned by range on interval_start, one
-- partition per UTC day (README "Partitions and retention").
--
-- Every index is per partition, so a load writes only the indexes of its interval's day, whatever
-- the table holds. processed_data's key is (event_id, interval_start): unique within a day, and the
-- index the cross-interval identity rule (the first stored delivery of an event id wins) probes by
-- event id, in the partitions within ETLML_DEDUP_WINDOW_DAYS of the interval only
-- (sql/stage_redelivered_in_window.sql), where a table-wide unique key used to enforce it; its index
-- on interval_start serves the queries by interval. predictions' key leads with interval_start: a
-- store inserts keys that sort after those of earlier intervals, at the right-hand edge of the index.
--
-- Upgrading a warehouse that holds data copies every row into the new tables inside this migration's
-- transaction, which holds the old tables' locks: pause the pipeline's DAGs while it runs (README).

-- Partition maintenance, callable by the pipeline role (which owns nothing): each runs with its
-- owner's rights, on these three tables only.

-- The day partitions of [from_ts, to_ts] (UTC days) that do not exist yet, of all three tables.
-- Created standalone and then attached: ATTACH PARTITION takes only a SHARE UPDATE EXCLUSIVE lock on
-- the parent, so loads of other days go on meanwhile. Returns the partitions it created.
CREATE FUNCTION etlml_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    day date;
    parent text;
    child text;
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
            BEGIN
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', child, parent);
                EXECUTE format(
                    'ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                    parent, child, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC')
                );
                RETURN NEXT child;
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                -- another caller created it meanwhile (this one waited for its commit): it exists.
                -- Depending on which catalog row the two met on, that is duplicate_table, or a
                -- unique_violation of pg_type's name index.
                NULL;
            END;
        END LOOP;
    END LOOP;
END;
$$;

-- Detach and drop the day partitions of all three tables that end on or before `before` (whole days
-- only), with the labels of their events and the rejected labels of those days, in the caller's
-- transaction: data and predictions go
-- together or not at all. Returns each day dropped and the rows its partitions held (the planner's
-- estimate, so this takes no scan). Takes an ACCESS EXCLUSIVE lock on each parent for a moment.
CREATE FUNCTION etlml_drop_partitions_before(before timestamptz)
RETURNS TABLE (day date, processed_rows bigint, prediction_rows bigint, rejected_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part record;
    parent text;
    child text;
    estimate bigint;
BEGIN
    FOR part IN
        SELECT to_date(substring(c.relname from '_p([0-9]{8})$'), 'YYYYMMDD') AS d
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'processed_data'::regclass
          AND c.relname ~ '^processed_data_p[0-9]{8}$'
        ORDER BY 1
    LOOP
        CONTINUE WHEN ((part.d + 1)::timestamp AT TIME ZONE 'UTC') > before;
        day := part.d;
        processed_rows := 0;
        prediction_rows := 0;
        rejected_rows := 0;
        FOREACH parent IN ARRAY ARRAY['processed_data', 'predictions', 'rejected_events'] LOOP
            child := parent || '_p' || to_char(part.d, 'YYYYMMDD');
            CONTINUE WHEN to_regclass(child) IS NULL;
            SELECT greatest(reltuples, 0)::bigint INTO estimate FROM pg_class WHERE oid = to_regclass(child);
            EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, child);
            EXECUTE format('DROP TABLE %I', child);
            CASE parent
                WHEN 'processed_data' THEN processed_rows := estimate;
                WHEN 'predictions' THEN prediction_rows := estimate;
                ELSE rejected_rows := estimate;
            END CASE;
        END LOOP;
        DELETE FROM labels
        WHERE interval_start >= (part.d::timestamp AT TIME ZONE 'UTC')
          AND interval_start < ((part.d + 1)::timestamp AT TIME ZONE 'UTC');
        DELETE FROM rejected_labels
        WHERE interval_start >= (part.d::timestamp AT TIME ZONE 'UTC')
          AND interval_start < ((part.d + 1)::timestamp AT TIME ZONE 'UTC');
        RETURN NEXT;
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION etlml_ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION etlml_drop_partitions_before(timestamptz) FROM PUBLIC;

-- The old tables step aside; their indexes and constraints are renamed so the new ones take the names.
ALTER TABLE processed_data RENAME TO processed_data_unpartitioned;
ALTER INDEX processed_data_pkey RENAME TO processed_data_unpartitioned_pkey;
ALTER INDEX processed_data_interval_idx RENAME TO processed_data_unpartitioned_interval_idx;
ALTER TABLE predictions RENAME TO predictions_unpartitioned;
ALTER INDEX predictions_pkey RENAME TO predictions_unpartitioned_pkey;
ALTER TABLE rejected_events RENAME TO rejected_events_unpartitioned;
ALTER INDEX rejected_events_pkey RENAME TO rejected_events_unpartitioned_pkey;
ALTER INDEX rejected_events_event_id_idx RENAME TO rejected_events_unpartitioned_event_id_idx;

-- Columns and checks as in 0001 and 0004; keys and indexes are added after the copy (built per
-- partition by sorting, which is faster than maintaining them row by row).
CREATE TABLE processed_data (
    event_id        text COLLATE "C" NOT NULL,
    ts_utc          timestamptz NOT NULL,
    f1              double precision,
    f2              double precision,
    f3              double precision,
    f1_z            double precision NOT NULL,
    f2_z            double precision NOT NULL,
    f3_z            double precision NOT NULL,
    f1_imputed      boolean NOT NULL,
    f2_imputed      boolean NOT NULL,
    f3_imputed      boolean NOT NULL,
    normalized_with text NOT NULL,
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (interval_start < interval_end),
    CHECK (ts_utc >= interval_start AND ts_utc < interval_end)
) PARTITION BY RANGE (interval_start);

-- interval_start is the interval of the event the prediction scores (that of its processed_data row).
CREATE TABLE predictions (
    interval_start   timestamptz NOT NULL,
    event_id         text COLLATE "C" NOT NULL,
    model_version    text NOT NULL,
    y_hat            double precision NOT NULL,
    ts_utc           timestamptz NOT NULL,
    predicted_at_utc timestamptz NOT NULL DEFAULT now(),
    written_by_run   text NOT NULL
) PARTITION BY RANGE (interval_start);

CREATE TABLE rejected_events (
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    source_file     text NOT NULL,
    row_number      bigint NOT NULL CHECK (row_number >= 0),
    reason          text NOT NULL CHECK (reason ~ '^[a-z_]+$'),
    message         text NOT NULL,
    event_id        text COLLATE "C",
    raw             bytea NOT NULL,
    written_by_run  text NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (interval_start < interval_end)
) PARTITION BY RANGE (interval_start);

-- A partition for every day that holds rows, and for today and the next two days.
SELECT count(*) FROM (
    SELECT etlml_ensure_partitions(least(min(d), now()), greatest(max(d), now() + interval '2 days'))
    FROM (
        SELECT interval_start AS d FROM processed_data_unpartitioned
        UNION ALL SELECT interval_start FROM rejected_events_unpartitioned
    ) AS days
) AS created;

INSERT INTO processed_data
SELECT event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed, f3_imputed,
       normalized_with, interval_start, interval_end, created_at, updated_at
FROM processed_data_unpartitioned;

INSERT INTO predictions (interval_start, event_id, model_version, y_hat, ts_utc, predicted_at_utc, written_by_run)
SELECT d.interval_start, p.event_id, p.model_version, p.y_hat, p.ts_utc, p.predicted_at_utc, p.written_by_run
FROM predictions_unpartitioned AS p
JOIN processed_data_unpartitioned AS d USING (event_id);

INSERT INTO rejected_events
SELECT interval_start, interval_end, source_file, row_number, reason, message, event_id, raw,
       written_by_run, rejected_at
FROM rejected_events_unpartitioned;

-- Nothing is left behind: every old row is in the new tables (a prediction whose event is missing
-- from processed_data breaks the warehouse's invariant, README "Integrity"; it is not dropped silently).
DO $$
DECLARE
    old_count bigint;
    new_count bigint;
BEGIN
    SELECT count(*) INTO old_count FROM predictions_unpartitioned;
    SELECT count(*) INTO new_count FROM predictions;
    IF old_count <> new_count THEN
        RAISE EXCEPTION 'migration 0013: % of % predictions have no processed_data row (orphans); '
            'nothing was changed. Find them with: SELECT * FROM predictions p WHERE NOT EXISTS '
            '(SELECT 1 FROM processed_data d WHERE d.event_id = p.event_id); delete them, then migrate again',
            old_count - new_count, old_count;
    END IF;
END;
$$;

ALTER TABLE processed_data ADD PRIMARY KEY (event_id, interval_start);
CREATE INDEX processed_data_interval_idx ON processed_data (interval_start);
ALTER TABLE predictions ADD PRIMARY KEY (interval_start, event_id, model_version);
ALTER TABLE rejected_events ADD PRIMARY KEY (interval_start, interval_end, source_file, row_number);
CREATE INDEX rejected_events_event_id_idx ON rejected_events (event_id) WHERE event_id IS NOT NULL;

DROP TABLE predictions_unpartitioned, processed_data_unpartitioned, rejected_events_unpartitioned;

COMMENT ON TABLE predictions IS
    'No foreign keys (row-by-row checks cost more than the insert). Every prediction is of a row of '
    'processed_data, in the same interval: loads delete the predictions of rows they change or remove, '
    'and a store is refused unless run_audit.load_id is the load it was computed from. See migration 0005.';
COMMENT ON COLUMN rejected_events.reason IS
    'a reason code of the data contract (README "Landing files and quarantine"); ''duplicate'' and '
    '''redelivered'' rows are counted as deduplicated, the others as rejected';

ANALYZE processed_data;
ANALYZE predictions;
ANALYZE rejected_events;
