"""Every DAG, run with dag.test() while the `warehouse` connection logs in as the pipeline role that
Compose's airflow-init grants (the ``pipeline_role`` fixture): a role that owns nothing suffices."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.dags.test_dag_runs import LOGICAL, PIPELINE, START, run

pytestmark = [pytest.mark.airflow, pytest.mark.db]


def test_every_dag_runs_as_the_pipeline_role(
    dags: dict[str, Any],
    pipeline_role: tuple[str, str],
    fresh_migrated: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run(dags["00_init_schema"], LOGICAL)  # nothing to migrate; the check reads the registry
    run(dags[PIPELINE], LOGICAL, simulated_events=60)  # COPY straight into the tables
    run(dags[PIPELINE], LOGICAL, simulated_events=40)  # staging, merge, 20 stale rows removed
    run(dags[PIPELINE], LOGICAL, simulated_events=40, shard_size=15)  # mapped over 3 shards
    conf = {"model_version": "baseline_v1", "from": START.isoformat(), "to": LOGICAL.isoformat()}
    run(dags["20_rescore"], LOGICAL + timedelta(minutes=1), **conf, chunk_size=25)
    # three intervals later, the labels of those 40 events: staged, matched, upserted, audited
    run(dags["15_ingest_labels"], LOGICAL + timedelta(minutes=30), simulated_events=40)
    with psycopg.connect(fresh_migrated) as owner:
        stored = owner.execute(
            "SELECT (SELECT count(*) FROM processed_data), (SELECT count(*) FROM predictions), "
            "(SELECT loaded FROM run_audit WHERE dag_id = %s), "
            "(SELECT count(*) FROM predictions p JOIN processed_data d USING (event_id) "
            " WHERE abs(p.y_hat - (0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z)) < 1e-12), "
            "(SELECT count(*) FROM labels JOIN processed_data USING (event_id)), "
            "(SELECT loaded FROM run_audit WHERE dag_id = '15_ingest_labels')",
            (PIPELINE,),
        ).fetchone()
    assert stored == (40, 40, 40, 40, 40, 40)
    # the monitor's sweep: the labels changed (rewritten as the owner), their interval is recomputed
    with psycopg.connect(fresh_migrated) as owner:
        owner.execute(
            "UPDATE labels AS l SET y_true = p.y_hat + 0.5, updated_at = now() FROM predictions AS p "
            "WHERE p.interval_start = l.interval_start AND p.event_id = l.event_id"
        )
    run(dags["30_monitor"], LOGICAL + timedelta(minutes=20))
    with psycopg.connect(fresh_migrated) as owner:
        monitored = owner.execute(
            "SELECT n_predictions, n_labeled, round(mae::numeric, 9), "
            "(SELECT count(*) FROM feature_drift) FROM model_performance"
        ).fetchone()
    assert monitored == (40, 40, 0.5, 4)
    # housekeeping makes the coming days' partitions and, with a retention, drops the old days: both
    # run with the owner's rights through etlml_ensure_partitions / etlml_drop_partitions_before
    now = datetime.now(UTC)
    old = (now - timedelta(days=20)).replace(minute=0, second=0, microsecond=0)
    run(dags[PIPELINE], old + timedelta(minutes=10), simulated_events=30)
    old_day = {"from": old.replace(hour=0), "to": old.replace(hour=0) + timedelta(days=1)}
    on_old_day = "WHERE interval_start >= %(from)s AND interval_start < %(to)s"
    rows_of_old_day = (
        f"SELECT (SELECT count(*) FROM processed_data {on_old_day}), "
        f"(SELECT count(*) FROM predictions {on_old_day})"
    )
    with psycopg.connect(fresh_migrated) as owner:
        assert owner.execute(rows_of_old_day, old_day).fetchone() == (30, 30)
    monkeypatch.setenv("ETLML_RETENTION_DAYS", "10")
    run(
        dags["90_housekeeping"], (now - timedelta(days=1)).replace(hour=3, minute=30, second=0, microsecond=0)
    )
    with psycopg.connect(fresh_migrated) as owner:
        assert owner.execute(rows_of_old_day, old_day).fetchone() == (0, 0)
        made = owner.execute(
            "SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL",
            (f"processed_data_p{old:%Y%m%d}", f"predictions_p{now + timedelta(days=2):%Y%m%d}"),
        ).fetchone()
    assert made == (False, True)
