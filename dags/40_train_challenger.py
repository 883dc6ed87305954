"""DAG 40_train_challenger: train a scikit-learn version on labelled events and shadow it, on demand.

Trigger it with the params ``name`` (the new version), ``estimator`` (``ridge`` or
``hist_gradient_boosting``), ``from`` and ``to`` (ISO-8601 with offset: the intervals that start in
``[from, to)``) and optionally ``description``. ``train`` fits on the window's labelled processed
events (validated on its latest 20% by ``ts_utc``) and registers the version with its statistics,
reference profile, training window and validation metrics; ``shadow`` makes it the challenger, so
every later run scores it beside the champion. Then ``etlml models compare`` and ``etlml models
promote NAME --if-better``. Both tasks change the registry: they use the Airflow connection
``warehouse_registry`` (the warehouse's owner) when it is defined, else ``warehouse``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="40_train_challenger",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    params={
        "name": Param(type="string", pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="new version"),
        "estimator": Param("hist_gradient_boosting", enum=["ridge", "hist_gradient_boosting"]),
        "from": Param(type="string", format="date-time", description="first interval start, inclusive"),
        "to": Param(type="string", format="date-time", description="window end, exclusive"),
        "description": Param("", type="string"),
    },
    tags=["etlml", "ml"],
    doc_md=__doc__,
)
def train_challenger_dag() -> None:
    @task
    def train() -> dict[str, Any]:
        from etlml.steps.train_challenger import train

        ctx = get_current_context()
        params = ctx["params"]
        return train(
            run_ref=f"{ctx['dag'].dag_id}/{ctx['run_id']}",
            version=str(params["name"]),
            estimator=str(params["estimator"]),
            start=datetime.fromisoformat(params["from"]),
            end=datetime.fromisoformat(params["to"]),
            description=str(params["description"]),
        ).to_xcom()

    @task
    def shadow(trained: dict[str, Any]) -> str | None:
        from etlml.steps.train_challenger import TrainedVersion, shadow

        ctx = get_current_context()
        return shadow(f"{ctx['dag'].dag_id}/{ctx['run_id']}", TrainedVersion.from_xcom(trained))

    shadow(train())


train_challenger_dag()
