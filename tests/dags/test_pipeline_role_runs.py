"""Every DAG, run with dag.test() while the `warehouse` connection logs in as the pipeline role that
Compose's airflow-init grants (the ``pipeline_role`` fixture): a role that owns nothing suffices."""

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.dags.test_dag_runs import LOGICAL, PIPELINE, START, run

pytestmark = [pytest.mark.airflow, pytest.mark.db]


def test_every_dag_runs_as_the_pipeline_role(
    dags: dict[str, Any], pipeline_role: tuple[str, str], fresh_migrated: str
) -> None:
    run(dags["00_init_schema"], LOGICAL)  # nothing to migrate; the check reads the registry
    run(dags[PIPELINE], LOGICAL, simulated_events=60)  # COPY straight into the tables
    run(dags[PIPELINE], LOGICAL, simulated_events=40)  # staging, merge, 20 stale rows removed
    run(dags[PIPELINE], LOGICAL, simulated_events=40, shard_size=15)  # mapped over 3 shards
    conf = {"model_version": "baseline_v1", "from": START.isoformat(), "to": LOGICAL.isoformat()}
    run(dags["20_rescore"], LOGICAL + timedelta(minutes=1), **conf, chunk_size=25)
    with psycopg.connect(fresh_migrated) as owner:
        stored = owner.execute(
            "SELECT (SELECT count(*) FROM processed_data), (SELECT count(*) FROM predictions), "
            "(SELECT loaded FROM run_audit WHERE dag_id = %s), "
            "(SELECT count(*) FROM predictions p JOIN processed_data d USING (event_id) "
            " WHERE abs(p.y_hat - (0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z)) < 1e-12)",
            (PIPELINE,),
        ).fetchone()
    assert stored == (40, 40, 40, 40)
    # the monitor's sweep: the labels arrived (written as the owner), their interval is recomputed
    with psycopg.connect(fresh_migrated) as owner:
        owner.execute(
            "INSERT INTO labels (event_id, y_true, observed_at, interval_start, interval_end, source_file, "
            "written_by_run) SELECT event_id, y_hat + 0.5, now(), %s, %s, 'test', 'test' FROM predictions",
            (START, LOGICAL),
        )
    run(dags["30_monitor"], LOGICAL + timedelta(minutes=20))
    with psycopg.connect(fresh_migrated) as owner:
        monitored = owner.execute(
            "SELECT n_predictions, n_labeled, round(mae::numeric, 9), "
            "(SELECT count(*) FROM feature_drift) FROM model_performance"
        ).fetchone()
    assert monitored == (40, 40, 0.5, 4)
