-- One row per DAG and data interval: the accounting of the latest load, which checked it at checked_at;
-- a new load_id, and no challenger error yet (predict records one); what the run read of its source
-- (the ledger) and the code that stored it.
INSERT INTO run_audit (
    dag_id, interval_start, interval_end, source, extracted, loaded, rejected, deduplicated,
    rejected_share, max_rejected_share, gate, by_reason, extra_fields, extra_field_names, imputed,
    written_by_run, load_id, first_entry_id, files, ledger, smaller_source_accepted, etlml_version,
    dag_version_id, model_versions
)
VALUES (
    %(dag_id)s, %(interval_start)s, %(interval_end)s, %(source)s, %(extracted)s, %(loaded)s, %(rejected)s,
    %(deduplicated)s, %(rejected_share)s, %(max_rejected_share)s, %(gate)s, %(by_reason)s, %(extra_fields)s,
    %(extra_field_names)s, %(imputed)s, %(written_by_run)s, %(load_id)s, %(first_entry_id)s,
    %(files)s, %(ledger)s, %(accepted)s, %(etlml_version)s, %(dag_version_id)s,
    %(model_versions)s
)
ON CONFLICT (dag_id, interval_start, interval_end) DO UPDATE SET
    source = EXCLUDED.source,
    extracted = EXCLUDED.extracted,
    loaded = EXCLUDED.loaded,
    rejected = EXCLUDED.rejected,
    deduplicated = EXCLUDED.deduplicated,
    rejected_share = EXCLUDED.rejected_share,
    max_rejected_share = EXCLUDED.max_rejected_share,
    gate = EXCLUDED.gate,
    by_reason = EXCLUDED.by_reason,
    extra_fields = EXCLUDED.extra_fields,
    extra_field_names = EXCLUDED.extra_field_names,
    imputed = EXCLUDED.imputed,
    written_by_run = EXCLUDED.written_by_run,
    load_id = EXCLUDED.load_id,
    challenger_error = NULL,
    first_entry_id = EXCLUDED.first_entry_id,
    files = EXCLUDED.files,
    ledger = EXCLUDED.ledger,
    -- who last accepted a smaller source stays on record until another acceptance
    smaller_source_accepted = COALESCE(EXCLUDED.smaller_source_accepted, run_audit.smaller_source_accepted),
    smaller_source_refused = NULL,
    etlml_version = EXCLUDED.etlml_version,
    dag_version_id = EXCLUDED.dag_version_id,
    model_versions = EXCLUDED.model_versions,
    checked_at = now();
