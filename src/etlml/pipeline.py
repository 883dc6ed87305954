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
from datetime import UTC, datetime
from typing import Any, Literal, ParamSpec, TypeVar

import pandas as pd
import psycopg

from etlml import contract, db, migrations, model, quality, settings, storage, transform, warehouse
from etlml.interval import Interval
from etlml.landing import LandingFileSource
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


_NOT_RETRYABLE = (
    db.ConnectionMissingError,
    migrations.MigrationError,
    model.ModelError,
    settings.SettingsError,
    contract.ContractError,
    quality.QualityGateError,  # a retry reads the same bad files
    quality.InvariantError,
)


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


def _source(cfg: settings.Settings, batch_size: int) -> EventSource:
    if cfg.source == "landing":
        return LandingFileSource(cfg.landing_root)
    return SimulatedSource(cfg.source_seed, batch_size)


@_fail_fast
def extract(run: RunContext, batch_size: int, source: EventSource | None = None) -> dict[str, Any]:
    """Check the warehouse, read the interval's records from the source (``ETLML_SOURCE``; the
    simulator makes ``batch_size`` events) and split them by the data contract into events
    (``extract.parquet``) and rejected records (``rejected.parquet``, written only if there are any)."""
    cfg = settings.load()
    preflight(cfg.warehouse_conn_id)
    source = source or _source(cfg, batch_size)
    source_name = str(getattr(source, "name", type(source).__name__))
    rules = contract.Rules(run.interval, now=datetime.now(UTC), max_future_skew=cfg.max_future_skew)
    checked = contract.apply(source.records(run.interval), rules)
    folder = _folder(run, cfg)
    ref = storage.write_frame(checked.valid, folder / "extract.parquet")
    rejected = None
    if len(checked.rejected):
        rejected = storage.write_frame(checked.rejected, folder / "rejected.parquet")
    counts = checked.counts
    log.info(
        "extracted %d records for %s from %s: %d events, %d rejected %s, %d duplicates",
        counts.extracted,
        run.interval.key,
        source_name,
        counts.accepted,
        counts.rejected,
        counts.by_reason,
        counts.deduplicated,
    )
    if counts.extra_fields:
        log.warning(
            "ignored %d unknown fields; the most frequent (records): %s",
            counts.extra_field_names,
            counts.extra_fields,
        )
    return {
        **ref.as_xcom(),
        "source": source_name,
        "rejected": rejected.as_xcom() if rejected else None,
        "counts": counts.as_xcom(),
    }


@_fail_fast
def transform_step(
    run: RunContext, extracted: dict[str, Any], normalization: Normalization
) -> dict[str, Any]:
    """Clean, impute and z-score with the champion's statistics (or per batch, if asked)."""
    cfg = settings.load()
    raw = storage.read_frame(storage.FileRef.from_xcom(extracted))
    with db.connect(cfg.warehouse_conn_id) as conn:
        # the aliases are read once per run, here: a promotion during the run cannot mix versions
        serving = model.aliases(conn)
        version = serving.get("champion") or model.champion(conn)
        champion = model.load(conn, version)
    cleaned = transform.clean(raw)
    stats = champion.stats if normalization == "model" else transform.batch_stats(cleaned)
    normalized = transform.normalize(cleaned, stats)
    ref = storage.write_frame(normalized, _folder(run, cfg) / "processed.parquet")
    normalized_with = version if normalization == "model" else "batch"
    challenger = serving.get("challenger")
    log.info(
        "normalized %d events with %s statistics; champion %s, challenger %s",
        ref.rows,
        normalized_with,
        version,
        challenger or "none",
    )
    return {
        **ref.as_xcom(),
        "model_version": version,
        "challenger": challenger,
        "normalized_with": normalized_with,
    }


def _quarantine(
    conn: psycopg.Connection[Any], run: RunContext, extracted: dict[str, Any], cfg: settings.Settings
) -> quality.Audit:
    """Make the interval's ``rejected_events`` equal what extract rejected, then check and store where
    every record went (``run_audit``); raises :class:`quality.InvariantError` if they do not add up."""
    meta = extracted.get("rejected")
    rejected = storage.read_frame(storage.FileRef.from_xcom(meta)) if meta else contract.empty_rejected()
    merged = warehouse.upsert_rejected(conn, rejected, run.interval, run.ref)
    log.info("rejected_events for %s: %s", run.interval.key, merged.as_xcom())
    counts = contract.Counts.from_xcom(extracted["counts"])
    loaded, rejected_rows, duplicates = warehouse.interval_outcomes(conn, run.interval)
    audit = quality.Audit(
        source=str(extracted.get("source", "")),
        extracted=counts.extracted,
        loaded=loaded,
        rejected=rejected_rows,
        deduplicated=duplicates,
        max_rejected_share=cfg.max_rejected_share,
        by_reason=counts.by_reason,
        extra_fields=counts.extra_fields,
        extra_field_names=counts.extra_field_names,
        imputed=counts.imputed,
    )
    quality.check_balanced(audit, run.interval)
    warehouse.store_audit(conn, run.dag_id, run.interval, run.ref, audit.as_params())
    return audit


@_fail_fast
def load_processed(
    run: RunContext, processed: dict[str, Any], extracted: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Upsert the interval's processed rows into ``processed_data``.

    Given extract's metadata (the DAG passes it), the same transaction also replaces the interval's
    quarantine in ``rejected_events`` and stores the run's accounting in ``run_audit`` once
    ``extracted = loaded + rejected + deduplicated`` holds. Then the quality gate fails the task,
    without retries, if the run rejected more than ``ETLML_MAX_REJECTED_SHARE`` of its records: the
    rows stay committed, but the run scores none of its events.
    """
    cfg = settings.load()
    frame = storage.read_frame(storage.FileRef.from_xcom(processed))
    with db.connect(cfg.warehouse_conn_id) as conn, conn.transaction():
        result = warehouse.upsert_processed(conn, frame, run.interval, str(processed["normalized_with"]))
        audit = _quarantine(conn, run, extracted, cfg) if extracted is not None else None
    log.info("processed_data for %s: %s", run.interval.key, result.as_xcom())
    if audit is None:
        return result.as_xcom()
    quality.enforce(audit, run.interval)
    return {**result.as_xcom(), "audit": audit.as_xcom()}


@_fail_fast
def predict(run: RunContext, processed: dict[str, Any]) -> dict[str, Any]:
    """Score the processed rows with the champion and, if one was set, the challenger that the run
    resolved in ``transform``; one Parquet file per version."""
    cfg = settings.load()
    frame = storage.read_frame(storage.FileRef.from_xcom(processed))
    versions = [str(processed["model_version"])]
    if processed.get("challenger"):
        versions.append(str(processed["challenger"]))
    with db.connect(cfg.warehouse_conn_id) as conn:
        scorers = [model.load(conn, version) for version in versions]
    files = []
    for scorer in scorers:
        # batch mode keeps its per-batch z-scores; otherwise each version scores under its own statistics
        stored_z = processed["normalized_with"] in {"batch", scorer.version}
        scored = frame[["event_id", "ts_utc"]].assign(y_hat=scorer.predict(frame, use_stored_z=stored_z))
        ref = storage.write_frame(scored, _folder(run, cfg) / f"predictions-{scorer.version}.parquet")
        files.append({**ref.as_xcom(), "model_version": scorer.version})
        log.info("scored %d events with model version %s", ref.rows, scorer.version)
    return {"model_version": versions[0], "challenger": processed.get("challenger"), "files": files}


@_fail_fast
def store_predictions(run: RunContext, predicted: dict[str, Any]) -> dict[str, Any]:
    """Upsert every scored version's predictions into ``predictions``, all in one transaction."""
    cfg = settings.load()
    results = {}
    with db.connect(cfg.warehouse_conn_id) as conn, conn.transaction():
        for file in predicted["files"]:
            frame = storage.read_frame(storage.FileRef.from_xcom(file))
            version = str(file["model_version"])
            results[version] = warehouse.upsert_predictions(conn, frame, version, run.ref).as_xcom()
            log.info("predictions of %s for %s: %s", version, run.interval.key, results[version])
    return {
        "model_version": predicted["model_version"],
        "challenger": predicted["challenger"],
        "by_version": results,
    }


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


RESCORE_COLUMNS = ("event_id", "ts_utc", "f1", "f2", "f3")


@_fail_fast
def rescore(run_ref: str, version: str, start: datetime, end: datetime, chunk_size: int) -> dict[str, Any]:
    """Score every ``processed_data`` event with ``ts_utc`` in ``[start, end)`` with ``version``.

    Reads the window once through a server-side cursor and writes ``chunk_size`` predictions per
    transaction, so memory stays bounded; each chunk is an idempotent upsert, so rerunning a window
    (or resuming one that failed half way) gives the same rows. Features are normalized with the
    version's own statistics.
    """
    if not start < end:
        raise model.ModelError(
            f"empty rescore window {start.isoformat()} .. {end.isoformat()}: 'from' must be < 'to'"
        )
    if chunk_size < 1:
        raise model.ModelError(f"chunk_size must be >= 1, got {chunk_size}")
    cfg = settings.load()
    totals = {"events": 0, "chunks": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    with db.connect(cfg.warehouse_conn_id) as reader, db.connect(cfg.warehouse_conn_id) as writer:
        scorer = model.load(reader, version)
        with reader.cursor(name="rescore_window") as cursor:
            cursor.execute(db.query("rescore_window"), {"from": start, "to": end})
            while rows := cursor.fetchmany(chunk_size):
                frame = transform.clean(pd.DataFrame.from_records(rows, columns=RESCORE_COLUMNS))
                scored = frame[["event_id", "ts_utc"]].assign(y_hat=scorer.predict(frame, use_stored_z=False))
                result = warehouse.upsert_predictions(writer, scored, version, run_ref)
                totals["events"] += len(rows)
                totals["chunks"] += 1
                for key in ("inserted", "updated", "unchanged"):
                    totals[key] += result.as_xcom()[key]
                log.info(
                    "rescored chunk %d (%d events) with %s: %s", totals["chunks"], len(rows), version, result
                )
    log.info("rescored [%s, %s) with %s: %s", start.isoformat(), end.isoformat(), version, totals)
    return {"model_version": version, **totals}
