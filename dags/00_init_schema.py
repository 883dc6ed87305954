"""DAG 00_init_schema: apply the warehouse migrations, then check the result. Safe to run any time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="00_init_schema",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=15)},
    tags=["etlml", "schema"],
    doc_md=__doc__,
)
def init_schema() -> None:
    @task
    def migrate() -> list[str]:
        from etlml.steps.init_schema import migrate_schema

        return migrate_schema()

    @task
    def check() -> dict[str, object]:
        from etlml.steps.init_schema import check_schema

        return check_schema().to_xcom()

    migrate() >> check()


init_schema()
