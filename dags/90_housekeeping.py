"""DAG 90_housekeeping: once a day, delete run folders of intermediate files older than the retention.

Every run of the pipeline writes Parquet files under ``<storage root>/<dag>/<interval>/<run>/``; nothing
else deletes them. This DAG deletes each run folder whose files are older than
``ETLML_STORAGE_RETENTION_DAYS`` (default 7) and whose DAG run has finished, logging what it deleted and
how many bytes. A folder of a queued or running run is never touched, nor one younger than the
retention (a failed run's files stay for its retry or its investigation until then). With
``ETLML_SOURCE=redis_stream`` it also trims the event stream's entries older than the retention.

It also keeps the warehouse's day partitions (docs/partitions.md): those of today and
the next two days are created if missing, and with ``ETLML_RETENTION_DAYS`` set, every day older than
that is dropped whole, its events, predictions, rejected records and labels together.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable


@dag(
    dag_id="90_housekeeping",
    schedule=CronDataIntervalTimetable("30 3 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,  # one sweep covers every day it missed
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["etlml", "operations"],
    doc_md=__doc__,
)
def housekeeping_dag() -> None:
    @task
    def sweep_storage() -> dict[str, Any]:
        from etlml.steps.housekeeping import sweep_storage

        ti = get_current_context()["ti"]

        def state_of(dag_id: str, run_id: str) -> str | None:
            """The run's state; ``None`` for a run Airflow no longer knows (its folder is nobody's).
            Any other failure to ask fails the task: a folder is never deleted on a guess."""
            if ti.get_dr_count(dag_id=dag_id, run_ids=[run_id]) == 0:
                return None
            state = ti.get_dagrun_state(dag_id=dag_id, run_id=run_id)
            return str(getattr(state, "value", state))  # a DagRunState member, or its text

        return sweep_storage(state_of).to_xcom()

    @task
    def trim_stream() -> int | None:
        from etlml.steps.housekeeping import trim_stream

        return trim_stream()

    @task
    def maintain_partitions() -> dict[str, Any]:
        from etlml.steps.housekeeping import maintain_partitions

        return maintain_partitions().to_xcom()

    sweep_storage()
    trim_stream()
    maintain_partitions()


housekeeping_dag()
