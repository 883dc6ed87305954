"""The pipeline's steps, one function per DAG task; the DAG file only wires them.

Each step reads its inputs from files named in the previous step's metadata, writes its output
under the run folder of the data interval, and returns metadata (paths, counts, checksums)
that is all XCom carries.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from etlml import db, migrations, model, settings, storage, transform, warehouse
from etlml.interval import Interval
from etlml.source import EventSource, SimulatedSource

log = logging.getLogger(__name__)

Normalization = Literal["model", "batch"]
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RunContext:
    """What a step needs to know about the DAG run it belongs to."""

    dag_id: str
    run_id: str
    interval: Interval

    @property
    def ref(self) -> str:
        """``dag_id/run_id``: recorded on the rows a run writes."""
        return f"{self.dag_id}/{self.run_id}"

    @classmethod
    def from_airflow(cls, context: Mapping[str, Any]) -> RunContext:
        """Build from an Airflow task context (``get_current_context()``)."""
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise ValueError(
                "this run has no data interval; schedule the DAG with CronDataIntervalTimetable "
                "or trigger it with a logical date"
            )
        return cls(dag_id=context["dag"].dag_id, run_id=str(context["run_id"]), interval=Interval(start, end))


_NOT_RETRYABLE = (db.ConnectionMissingError, migrations.MigrationError, model.ModelError)


def _fail_fast(func: Callable[P, R]) -> Callable[P, R]:
    """Raise configuration errors as ``AirflowFailException``: retrying cannot fix them."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except _NOT_RETRYABLE as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc

    return wrapper


def preflight(conn_id: str) -> str:
    """Check the warehouse before a run writes anything; return the champion version.

    Fails with a message that says what to do when the connection is missing, the server does not
    answer, migrations are not applied, or no usable champion is registered.
    """
    with db.connect(conn_id) as conn:
        migrations.check(conn)
        version = model.champion(conn)
        model.load(conn, version)
    return version


def _folder(run: RunContext, cfg: settings.Settings) -> Any:
    return storage.run_folder(cfg.storage_root, run.dag_id, run.interval)


@_fail_fast
def extract(run: RunContext, batch_size: int, source: EventSource | None = None) -> dict[str, Any]:
    """Check the warehouse, then take the interval's raw events from the source and store them as Parquet."""
    cfg = settings.load()
    preflight(cfg.warehouse_conn_id)
    events = (source or SimulatedSource(cfg.source_seed, batch_size)).events(run.interval)
    ref = storage.write_frame(events, _folder(run, cfg) / "extract.parquet")
    log.info("extracted %d events for %s to %s", ref.rows, run.interval.key, ref.path)
    return ref.as_xcom()


@_fail_fast
def transform_step(
    run: RunContext, extracted: dict[str, Any], normalization: Normalization
) -> dict[str, Any]:
    """Clean, impute and z-score with the champion's statistics (or per batch, if asked)."""
    cfg = settings.load()
    raw = storage.read_frame(storage.FileRef.from_xcom(extracted))
    with db.connect(cfg.warehouse_conn_id) as conn:
        version = model.champion(conn)
        champion = model.load(conn, version)
    cleaned = transform.clean(raw)
    stats = champion.stats if normalization == "model" else transform.batch_stats(cleaned)
    normalized = transform.normalize(cleaned, stats)
    ref = storage.write_frame(normalized, _folder(run, cfg) / "processed.parquet")
    normalized_with = version if normalization == "model" else "batch"
    log.info("normalized %d events with %s statistics, champion %s", ref.rows, normalized_with, version)
    return {**ref.as_xcom(), "model_version": version, "normalized_with": normalized_with}


@_fail_fast
def load_processed(run: RunContext, processed: dict[str, Any]) -> dict[str, Any]:
    """Upsert the interval's processed rows into ``processed_data``."""
    cfg = settings.load()
    frame = storage.read_frame(storage.FileRef.from_xcom(processed))
    with db.connect(cfg.warehouse_conn_id) as conn:
        result = warehouse.upsert_processed(conn, frame, run.interval, str(processed["normalized_with"]))
    log.info("processed_data for %s: %s", run.interval.key, result.as_xcom())
    return result.as_xcom()


@_fail_fast
def predict(run: RunContext, processed: dict[str, Any]) -> dict[str, Any]:
    """Score the processed rows with the model version the run resolved in ``transform``."""
    cfg = settings.load()
    frame = storage.read_frame(storage.FileRef.from_xcom(processed))
    version = str(processed["model_version"])
    with db.connect(cfg.warehouse_conn_id) as conn:
        scorer = model.load(conn, version)
    scored = frame[["event_id", "ts_utc"]].assign(y_hat=model.score(frame, scorer))
    ref = storage.write_frame(scored, _folder(run, cfg) / f"predictions-{version}.parquet")
    log.info("scored %d events with model version %s", ref.rows, version)
    return {**ref.as_xcom(), "model_version": version}


@_fail_fast
def store_predictions(run: RunContext, predicted: dict[str, Any]) -> dict[str, Any]:
    """Upsert the predictions of one model version into ``predictions``."""
    cfg = settings.load()
    frame = storage.read_frame(storage.FileRef.from_xcom(predicted))
    version = str(predicted["model_version"])
    with db.connect(cfg.warehouse_conn_id) as conn:
        result = warehouse.upsert_predictions(conn, frame, version, run.ref)
    log.info("predictions of %s for %s: %s", version, run.interval.key, result.as_xcom())
    return {**result.as_xcom(), "model_version": version}


def migrate_schema() -> list[str]:
    """Apply pending warehouse migrations; return the names of those applied."""
    with db.connect(settings.load().warehouse_conn_id) as conn:
        return [f"{m.version:04d}_{m.name}" for m in migrations.migrate(conn)]


def check_schema() -> dict[str, Any]:
    """Sanity check after migrating: all migrations applied, tables present, a usable champion."""
    conn_id = settings.load().warehouse_conn_id
    version = preflight(conn_id)
    with db.connect(conn_id) as conn:
        applied = len(migrations.applied(conn))
    log.info("warehouse schema at migration %d, champion %s", applied, version)
    return {"migrations": applied, "champion": version}
