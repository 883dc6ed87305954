-- What the role the DAGs connect as may do (in Docker Compose: WAREHOUSE_PIPELINE_USER), applied by
-- `etlml db grant-pipeline-role` as the warehouse's owner after every `etlml db migrate`. The role owns
-- nothing, so it can neither TRUNCATE, DROP nor ALTER a table; it reads the registry and the schema's
-- history, and reads and writes the tables the pipeline, the label ingest and the monitor load. Staging tables are TEMPORARY.
-- Registry changes (etlml models register/promote/...) and migrations run as the owner.
-- {role} and {database} are composed by psycopg as identifiers.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role};
REVOKE ALL ON SCHEMA public FROM {role};
GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON schema_migrations, model_versions, model_aliases, model_events, model_comparisons TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON processed_data, predictions, rejected_events TO {role};
GRANT SELECT, INSERT, UPDATE ON run_audit TO {role};
-- day partitions: created ahead (and by a catch-up load), dropped by retention; both run as the owner
GRANT EXECUTE ON FUNCTION etlml_ensure_partitions(timestamptz, timestamptz), etlml_drop_partitions_before(timestamptz) TO {role};
-- ground truth (15_ingest_labels) and monitoring (30_monitor)
GRANT SELECT, INSERT, UPDATE, DELETE ON labels, rejected_labels, model_performance, feature_drift TO {role};
-- the intervals whose labels changed (written by the labels' triggers, read and cleared by 30_monitor)
GRANT SELECT, INSERT, UPDATE, DELETE ON monitor_due TO {role};
GRANT USAGE ON SEQUENCE monitor_due_seq TO {role};
-- the versions' error estimators (30_monitor estimates each version's MAE with its own)
GRANT SELECT ON error_estimators TO {role};
