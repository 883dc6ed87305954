-- Quarantine and run audit: every record a run reads is either in processed_data or here.

-- Records that broke the data contract (etlml/contract.py, README "Landing files and quarantine"),
-- and records dropped as duplicates of another record of the same run (reason 'duplicate').
-- Keyed like processed_data, by the run's data interval: a rerun makes an interval's rows equal to
-- its latest run (inserted, changed, or removed when no longer rejected).
CREATE TABLE rejected_events (
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    -- the file relative to the landing root ('YYYY-MM-DD/HHMM/name'), or 'simulator'
    source_file     text NOT NULL,
    -- JSONL: line number; CSV: line where the row starts (header = 1); Parquet: row from 1;
    -- 0: the record stands for the whole file (unparseable_file, unsupported_file)
    row_number      bigint NOT NULL CHECK (row_number >= 0),
    reason          text NOT NULL CHECK (reason ~ '^[a-z_]+$'),
    message         text NOT NULL,
    -- the record's event_id, when it was a well-formed one
    event_id        text COLLATE "C",
    -- the record's bytes exactly as read (decompressed; a Parquet row as JSON; a whole file as found):
    -- bytea, because a record may hold NUL bytes or invalid UTF-8, which text cannot
    raw             bytea NOT NULL,
    -- the Airflow run (dag_id/run_id) that wrote or last changed this row
    written_by_run  text NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (interval_start, interval_end, source_file, row_number),
    CHECK (interval_start < interval_end)
);

CREATE INDEX rejected_events_event_id_idx ON rejected_events (event_id) WHERE event_id IS NOT NULL;

-- Where the records of each run went, written by load_processed in the transaction that loads them.
-- The CHECK is the invariant: nothing read is unaccounted for.
CREATE TABLE run_audit (
    dag_id              text NOT NULL,
    interval_start      timestamptz NOT NULL,
    interval_end        timestamptz NOT NULL,
    source              text NOT NULL,
    extracted           bigint NOT NULL CHECK (extracted >= 0),
    loaded              bigint NOT NULL CHECK (loaded >= 0),
    rejected            bigint NOT NULL CHECK (rejected >= 0),
    deduplicated        bigint NOT NULL CHECK (deduplicated >= 0),
    rejected_share      double precision NOT NULL,
    max_rejected_share  double precision NOT NULL,
    gate                text NOT NULL CHECK (gate IN ('passed', 'failed')),
    -- reason -> rejected records, without 'duplicate'
    by_reason           jsonb NOT NULL,
    -- the most frequent unknown fields -> records carrying them, and how many distinct ones there were
    extra_fields        jsonb NOT NULL,
    extra_field_names   bigint NOT NULL,
    -- feature -> accepted events missing it (imputed)
    imputed             jsonb NOT NULL,
    written_by_run      text NOT NULL,
    checked_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, interval_start, interval_end),
    CHECK (interval_start < interval_end),
    CHECK (extracted = loaded + rejected + deduplicated)
);
