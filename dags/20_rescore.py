"""DAG 20_rescore: score a past window of processed events with one model version, on demand.

Trigger it with the params ``model_version``, ``from`` and ``to`` (ISO-8601 with offset). It reads the
window's events in chunks of ``chunk_size`` and upserts their predictions under that version, so a
rerun of the same window leaves identical rows, and other versions' predictions are never touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="20_rescore",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    params={
        "model_version": Param(type="string", minLength=1, description="a registered version"),
        "from": Param(type="string", format="date-time", description="window start, inclusive (ts_utc)"),
        "to": Param(type="string", format="date-time", description="window end, exclusive (ts_utc)"),
        "chunk_size": Param(50_000, type="integer", minimum=1, description="predictions per transaction"),
    },
    tags=["etlml", "ml"],
    doc_md=__doc__,
)
def rescore_dag() -> None:
    @task
    def rescore() -> dict[str, Any]:
        from etlml.steps.rescore import rescore

        ctx = get_current_context()
        params = ctx["params"]
        return rescore(
            run_ref=f"{ctx['dag'].dag_id}/{ctx['run_id']}",
            version=str(params["model_version"]),
            start=datetime.fromisoformat(params["from"]),
            end=datetime.fromisoformat(params["to"]),
            chunk_size=int(params["chunk_size"]),
        ).to_xcom()

    rescore()


rescore_dag()
