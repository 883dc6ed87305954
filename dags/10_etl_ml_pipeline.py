"""DAG 10_etl_ml_pipeline: every 10 minutes, score the events of the run's data interval.

extract -> transform -> load_processed -> predict -> store_predictions. Each task calls one
function of ``etlml.steps``; data moves as Parquet files under the storage root and XCom carries
only paths, row counts, checksums and the run's plan. Every step is keyed by the data interval, so
a rerun or a cleared task reproduces the same rows.

``extract`` plans the run (XCom key ``run``: the model versions it scores with, resolved once, and
the statistics it normalizes with) and splits an interval of more than ``shard_size`` records by
event id into shards: ``transform``, ``predict`` and ``store_predictions`` are mapped over them
(one task instance per shard, so Celery workers share the interval), while ``load_processed``
commits every shard's rows, the quarantine and the audit of the interval in one transaction. A
small interval is one shard.

Records come from the simulator (``simulated_events`` per interval), from landing files or from a
Redis stream (``ETLML_SOURCE``). ``wait_for_window`` passes at once except for a stream, whose
interval it waits for, deferred to the triggerer, until it is closed. ``extract`` checks the
records against the data contract; ``load_processed`` quarantines the rejected ones in
``rejected_events`` with the loaded events, and fails the run without retries when more than
``ETLML_MAX_REJECTED_SHARE`` of the records were rejected. ``predict`` scores the rows of the load
``load_processed`` committed (its ``load_id``) and ``store_predictions`` stores them only while that
load is the interval's latest; a challenger that cannot score never fails the run.

``load_processed`` and ``store_predictions`` emit events of the Assets ``processed_data`` and
``predictions`` with the interval, its rows and the model versions in their extra (``30_monitor`` is
scheduled on ``predictions | labels``). A run not finished 15 minutes (``ETLML_FINISH_WITHIN_MINUTES``)
after its interval ends misses its deadline: the scheduler detects it and the triggerer calls the alert
notifier (``etlml.monitoring.alerts``), which logs it and posts it to connection ``etlml_alerts`` when
one exists.

The scheduler runs every interval from ``ETLML_START_DATE`` on, oldest first and one at a time
(catchup): downtime is caught up, never skipped. Two runs of one interval never interleave their
writes (a per-interval lock in the warehouse), and each run writes its files in a folder of its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.timetables.interval import CronDataIntervalTimetable

from etlml.airflow_compat import patch_dag_test_deadlines
from etlml.settings import finish_within, start_date
from etlml.steps.assets import PREDICTIONS_URI, PROCESSED_DATA_URI
from etlml.steps.wait_for_window import WaitForStreamWindow

DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}
PROCESSED_DATA = Asset(name="processed_data", uri=PROCESSED_DATA_URI, group="etlml")
PREDICTIONS = Asset(name="predictions", uri=PREDICTIONS_URI, group="etlml")
INTERVAL = timedelta(minutes=10)
# Freshness: a run must finish within ETLML_FINISH_WITHIN_MINUTES (15) of its interval's end.
# Airflow 3.3's deadline references have no data-interval end; a scheduled run's logical date is its
# interval's start, so the deadline is logical date + one interval + that many minutes.
FINISH_WITHIN = finish_within()
_WITHIN = f"{FINISH_WITHIN.total_seconds() / 60:g} minutes"
DEADLINE = DeadlineAlert(
    reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
    interval=INTERVAL + FINISH_WITHIN,
    callback=AsyncCallback(
        "etlml.monitoring.alerts.AlertNotifier",
        kwargs={
            "kind": "deadline",
            "summary": f"a run of 10_etl_ml_pipeline did not finish within {_WITHIN} of its interval's end",
        },
    ),
    name=f"finished {_WITHIN} after the interval",
)
# `airflow dags test` of a DAG with a deadline exits 1 after a successful run on Airflow 3.3.2; the
# patch is limited to the releases with that defect (etlml.airflow_compat says how and until when).
patch_dag_test_deadlines()


def _run() -> Any:
    """The running DAG run as an ``etlml.steps.run.RunContext``."""
    from etlml.steps.run import RunContext

    return RunContext.from_airflow(get_current_context())


def _params() -> Any:
    return get_current_context()["params"]


@dag(
    dag_id="10_etl_ml_pipeline",
    schedule=CronDataIntervalTimetable("*/10 * * * *", timezone="UTC"),
    # every interval from ETLML_START_DATE on, oldest first, one run at a time: after downtime (or a
    # run that overran its 10 minutes) the scheduler catches up instead of skipping intervals
    start_date=start_date(),
    catchup=True,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    deadline=DEADLINE,
    default_args=DEFAULT_ARGS,
    params={
        "simulated_events": Param(
            200,
            type="integer",
            minimum=1,
            description="events the simulator makes per interval (ETLML_SOURCE=simulator only; "
            "landing files are read as they are)",
        ),
        "shard_size": Param(
            1_000_000,
            type="integer",
            minimum=1,
            description="records per shard: a larger interval is split into ceil(records / shard_size) "
            "shards, each transformed, scored and stored by its own mapped task instances",
        ),
        "normalization": Param(
            "model",
            enum=["model", "batch"],
            description="'model': the champion's stored statistics; 'batch': per-batch z-scores "
            "(reproduces the case study; a score then depends on its batch mates)",
        ),
        "accept_smaller_source": Param(
            False,
            type="boolean",
            description="a rerun never stores less than its source held when the interval was stored "
            "(fewer records, files or stream entries gone): it fails without retry, naming what is "
            "missing. Set true, by hand, when the source really lost that data or it was withdrawn on "
            "purpose; run_audit records who did",
        ),
        "batch_size": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="deprecated: the old name of simulated_events, still obeyed (with a warning) "
            "in this release; use simulated_events",
        ),
    },
    tags=["etlml", "ml"],
    doc_md=__doc__,
)
def etl_ml_pipeline() -> None:
    @task
    def extract() -> list[dict[str, Any]]:
        """Returns the shards (what the mapped tasks expand over); the run's plan goes to XCom key
        ``run``."""
        from etlml.steps.extract import extract
        from etlml.steps.run import simulated_events

        params = _params()
        extracted = extract(
            _run(),
            simulated_events=simulated_events(params),
            shard_size=int(params["shard_size"]),
            normalization=params["normalization"],
        )
        get_current_context()["ti"].xcom_push(key="run", value=extracted.plan.to_xcom())
        return [shard.to_xcom() for shard in extracted.shards]

    @task
    def transform(plan: dict[str, Any], shard: dict[str, Any]) -> dict[str, Any]:
        from etlml.steps.run import RunPlan, Shard
        from etlml.steps.transform import transform

        return transform(_run(), RunPlan.from_xcom(plan), Shard.from_xcom(shard)).to_xcom()

    @task(outlets=[PROCESSED_DATA])
    def load_processed(processed: list[dict[str, Any]], plan: dict[str, Any]) -> dict[str, Any]:
        from etlml.steps.assets import processed_extra
        from etlml.steps.load_processed import load_processed
        from etlml.steps.run import ProcessedShard, RunPlan

        shards = [ProcessedShard.from_xcom(p) for p in processed]
        run, run_plan = _run(), RunPlan.from_xcom(plan)
        loaded = load_processed(run, run_plan, shards)
        get_current_context()["outlet_events"][PROCESSED_DATA].extra = processed_extra(run, run_plan, loaded)
        return loaded.to_xcom()

    @task
    def predict(plan: dict[str, Any], loaded: dict[str, Any], processed: dict[str, Any]) -> dict[str, Any]:
        from etlml.steps.predict import predict
        from etlml.steps.run import LoadRef, ProcessedShard, RunPlan

        shard = ProcessedShard.from_xcom(processed)
        return predict(_run(), RunPlan.from_xcom(plan), shard, LoadRef.from_xcom(loaded)).to_xcom()

    @task(outlets=[PREDICTIONS])
    def store_predictions(predicted: dict[str, Any]) -> dict[str, Any]:
        from etlml.steps.assets import predictions_extra
        from etlml.steps.run import PredictedShard
        from etlml.steps.store_predictions import store_predictions

        run = _run()
        stored = store_predictions(run, PredictedShard.from_xcom(predicted))
        get_current_context()["outlet_events"][PREDICTIONS].extra = predictions_extra(run, stored)
        return stored.to_xcom()

    shards = extract()
    WaitForStreamWindow(task_id="wait_for_window") >> shards
    plan = shards["run"]  # type: ignore[index]
    processed = transform.partial(plan=plan).expand(shard=shards)
    # every shard in one transaction, with the run's rejected records and audit; then the quality gate
    loaded = load_processed(processed, plan)
    # predict scores the load's rows (its load_id), without the ids it refused as redelivered
    predicted = predict.partial(plan=plan, loaded=loaded).expand(processed=processed)
    store_predictions.expand(predicted=predicted)


etl_ml_pipeline()
