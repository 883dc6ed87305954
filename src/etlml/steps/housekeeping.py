"""DAG ``90_housekeeping``'s tasks: delete the run folders of intermediate files nobody needs any more,
trim the event stream to the same retention, and keep the warehouse's day partitions: created ahead,
dropped past ``ETLML_RETENTION_DAYS``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

from etlml import settings, storage
from etlml.warehouse import connection, writes

log = logging.getLogger(__name__)

PIPELINE = "10_etl_ml_pipeline"
"""The DAG whose stored intervals bound how far the event stream may be trimmed."""
UNFINISHED = {"queued", "running"}
"""DAG run states whose folders are never deleted, however old."""


@dataclass(frozen=True)
class Swept:
    """What one sweep did: folders deleted and their bytes, and folders kept because their run has
    not finished or they are younger than the retention."""

    deleted: int = 0
    deleted_bytes: int = 0
    kept_unfinished: int = 0
    kept_young: int = 0

    def to_xcom(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Partitions:
    """What one partition upkeep did: the day partitions created ahead and the days retention dropped."""

    created: tuple[str, ...]
    dropped: tuple[writes.DroppedDay, ...] = ()

    def to_xcom(self) -> dict[str, object]:
        return {"created": list(self.created), "dropped": [asdict(day) for day in self.dropped]}


def sweep_storage(state_of: Callable[[str, str], str | None], now: datetime | None = None) -> Swept:
    """Delete every run folder under ``ETLML_STORAGE_ROOT`` whose files last changed more than
    ``ETLML_STORAGE_RETENTION_DAYS`` ago and whose run has finished (``state_of(dag_id, run_id)``:
    the run's state, ``None`` if Airflow no longer knows it). A folder of a queued or running run is
    never deleted, nor one younger than the retention, whatever its run's state. Each deletion is
    logged with its size."""
    cfg = settings.load()
    cutoff = (now or datetime.now(UTC)) - cfg.storage_retention
    swept = Swept()
    for folder in storage.run_folders(cfg.storage_root):
        if folder.modified > cutoff:
            swept = replace(swept, kept_young=swept.kept_young + 1)
            continue
        state = state_of(folder.dag_id, folder.run_id) if folder.dag_id and folder.run_id else None
        if state in UNFINISHED:
            log.info("kept %s: its run %s is %s", folder.path, folder.run_id, state)
            swept = replace(swept, kept_unfinished=swept.kept_unfinished + 1)
            continue
        storage.remove(folder.path)
        log.info(
            "deleted %s (%d bytes; last written %s; run %s, %s)",
            folder.path,
            folder.size,
            folder.modified.isoformat(),
            folder.run_id or "unknown",
            state or "no longer known to Airflow",
        )
        swept = replace(swept, deleted=swept.deleted + 1, deleted_bytes=swept.deleted_bytes + folder.size)
    storage.remove_empty_folders(cfg.storage_root)
    log.info(
        "storage sweep with a retention of %s: deleted %d run folders (%d bytes), kept %d of unfinished "
        "runs and %d younger than the retention",
        cfg.storage_retention,
        swept.deleted,
        swept.deleted_bytes,
        swept.kept_unfinished,
        swept.kept_young,
    )
    return swept


def trim_stream(now: datetime | None = None) -> int | None:
    """With ``ETLML_SOURCE=redis_stream``, remove the stream's entries that arrived more than
    ``ETLML_STORAGE_RETENTION_DAYS`` ago (``XTRIM MINID``, exact) and return how many; ``None`` for
    other sources. Never past an interval not yet stored: entries from the oldest interval since
    ``ETLML_START_DATE`` without a stored run that passed its gate on are kept, whatever their age
    (a catch-up backlog, a failed run waiting to be cleared)."""
    from etlml.ingest import stream
    from etlml.warehouse import runs

    cfg = settings.load()
    if cfg.source != "redis_stream":
        log.info("ETLML_SOURCE=%s: no event stream to trim", cfg.source)
        return None
    retention = (now or datetime.now(UTC)) - cfg.storage_retention
    with connection.connect(cfg.warehouse_conn_id) as conn:
        point = runs.trim_point(conn, PIPELINE, settings.start_date(), retention)
    removed = stream.trim(stream.connect(cfg.stream_conn_id), cfg.stream_key, point.before)
    log.info(
        "trimmed %d entries of stream %s that arrived before %s; %s",
        removed,
        cfg.stream_key,
        point.before.isoformat(),
        point.why,
    )
    return removed


def maintain_partitions(now: datetime | None = None) -> Partitions:
    """Create the day partitions of today and the next ``PARTITIONS_AHEAD_DAYS`` days that are missing,
    so no load waits to create one; with ``ETLML_RETENTION_DAYS`` set, drop every day partition that
    ended more than that long ago (events, predictions, rejected records and their labels together),
    logging each day dropped and the rows it held."""
    cfg = settings.load()
    now = now or datetime.now(UTC)
    with connection.connect(cfg.warehouse_conn_id) as conn:
        created = writes.ensure_partitions(conn, now, now + timedelta(days=settings.PARTITIONS_AHEAD_DAYS))
        log.info("created %d day partitions ahead: %s", len(created), ", ".join(created) or "none missing")
        if cfg.retention is None:
            log.info("ETLML_RETENTION_DAYS is not set: every day partition is kept")
            return Partitions(tuple(created))
        dropped = writes.drop_partitions_before(conn, now - cfg.retention)
    for day in dropped:
        log.info(
            "dropped the partitions of %s, older than the retention of %s: about %d events, %d "
            "predictions and %d rejected records",
            day.day,
            cfg.retention,
            day.processed_rows,
            day.prediction_rows,
            day.rejected_rows,
        )
    log.info("retention of %s: dropped %d day(s)", cfg.retention, len(dropped))
    return Partitions(tuple(created), tuple(dropped))
