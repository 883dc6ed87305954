-- The ledger: what each interval's latest stored run read from its source, so that a rerun can tell a
-- source that shrank (a stream restored from an older copy, files withdrawn) from one that grew, and
-- refuses to store less than was stored unless an operator asks for it.
--   ledger: {"records": N, "files": {file: {"size": bytes, "sha256"|"etag": ..., "mtime_ns": ...}},
--            "stream": {"key": ..., "first_entry_id": ..., "last_entry_id": ..., "entries": N}}
--            (NULL for the simulator, and for rows stored before this migration)
--   smaller_source_accepted: the latest load read less than the run before it, because the run was
--            triggered with {"accept_smaller_source": true}: by whom, which run, what was missing
--   smaller_source_refused: the latest run of the interval that found its source smaller than the
--            ledger and refused to load (cleared by the next load)
--   etlml_version, dag_version_id: the code that stored the interval (package version, Airflow's DAG
--            version id), so that a past result can be explained after an upgrade
--   model_versions: the versions the run scored with, the champion first (a challenger that could not
--            score is named in challenger_error)
ALTER TABLE run_audit
    ADD COLUMN ledger jsonb,
    ADD COLUMN smaller_source_accepted jsonb,
    ADD COLUMN smaller_source_refused jsonb,
    ADD COLUMN etlml_version text,
    ADD COLUMN dag_version_id text,
    ADD COLUMN model_versions text[];
