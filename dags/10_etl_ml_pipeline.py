"""DAG 10_etl_ml_pipeline: every 10 minutes, score the events of the run's data interval.

extract -> transform -> load_processed -> predict -> store_predictions. Each task calls one
function of ``etlml.pipeline``; data moves as Parquet files under the storage root and XCom
carries only paths, row counts and checksums. Every step is keyed by the data interval, so a
rerun or a cleared task reproduces the same rows.

An interval of more than ``shard_size`` records is split by event id into shards:
``transform``, ``predict`` and ``store_predictions`` are mapped over them (one task instance per
shard, so Celery workers share the interval), while ``load_processed`` commits every shard's rows,
the quarantine and the audit of the interval in one transaction. A small interval is one shard.

Records come from the simulator or from landing files (``ETLML_SOURCE``). ``extract`` checks them
against the data contract; ``load_processed`` quarantines the rejected ones in ``rejected_events``
with the loaded events, and fails the run without retries when more than
``ETLML_MAX_REJECTED_SHARE`` of the records were rejected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}


def _run() -> Any:
    """The running DAG run as an ``etlml.pipeline.RunContext``."""
    from etlml.pipeline import RunContext

    return RunContext.from_airflow(get_current_context())


def _param(name: str) -> Any:
    return get_current_context()["params"][name]


@dag(
    dag_id="10_etl_ml_pipeline",
    schedule=CronDataIntervalTimetable("*/10 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args=DEFAULT_ARGS,
    params={
        "batch_size": Param(200, type="integer", minimum=1, description="events per interval"),
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
    },
    tags=["etlml", "ml"],
    doc_md=__doc__,
)
def etl_ml_pipeline() -> None:
    @task
    def extract() -> list[dict[str, Any]]:
        """Returns the shards (what the mapped tasks expand over); the run's metadata goes to XCom
        key ``run``."""
        from etlml import pipeline

        meta = pipeline.extract(
            _run(),
            batch_size=int(_param("batch_size")),
            shard_size=int(_param("shard_size")),
            normalization=_param("normalization"),
        )
        shards = meta.pop("shards")
        get_current_context()["ti"].xcom_push(key="run", value=meta)
        return list(shards)

    @task
    def transform(extracted: dict[str, Any], shard: dict[str, Any]) -> dict[str, Any]:
        from etlml import pipeline

        return pipeline.transform_step(_run(), extracted, _param("normalization"), shard)

    @task
    def load_processed(processed: list[dict[str, Any]], extracted: dict[str, Any]) -> dict[str, Any]:
        from etlml import pipeline

        return pipeline.load_processed(_run(), list(processed), extracted)

    @task
    def predict(processed: dict[str, Any]) -> dict[str, Any]:
        from etlml import pipeline

        return pipeline.predict(_run(), processed)

    @task
    def store_predictions(predicted: dict[str, Any]) -> dict[str, Any]:
        from etlml import pipeline

        return pipeline.store_predictions(_run(), predicted)

    shards = extract()
    extracted = shards["run"]  # type: ignore[index]
    processed = transform.partial(extracted=extracted).expand(shard=shards)
    # every shard in one transaction, with the run's rejected records and audit; then the quality gate
    loaded = load_processed(processed, extracted)
    predicted = predict.expand(processed=processed)
    loaded >> predicted
    store_predictions.expand(predicted=predicted)


etl_ml_pipeline()
