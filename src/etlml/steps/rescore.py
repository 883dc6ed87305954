"""DAG ``20_rescore``'s task: score a past window of processed events with one model version."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from etlml import settings
from etlml.errors import SettingsError
from etlml.features.transform import clean
from etlml.interval import Interval
from etlml.models import loader
from etlml.steps.run import fail_fast
from etlml.warehouse import connection, writes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rescored:
    """A rescore's outcome: events read, chunks written, and what the upserts did."""

    model_version: str
    events: int = 0
    chunks: int = 0
    merged: writes.MergeResult = field(default_factory=lambda: writes.MergeResult(0, 0, 0))

    def to_xcom(self) -> dict[str, object]:
        merged = self.merged.to_xcom()
        counts = {k: merged[k] for k in ("inserted", "updated", "unchanged")}
        return {"model_version": self.model_version, "events": self.events, "chunks": self.chunks, **counts}


@fail_fast
def rescore(run_ref: str, version: str, start: datetime, end: datetime, chunk_size: int) -> Rescored:
    """Score every ``processed_data`` event with ``ts_utc`` in ``[start, end)`` with ``version``.

    Reads the window's event ids once through a server-side cursor and writes ``chunk_size``
    predictions per transaction, so memory stays bounded; each chunk is an idempotent upsert, so
    rerunning a window (or resuming one that failed half way) gives the same rows. A chunk shares the
    locks of its events' intervals and reads their features under them, so a load of one of those
    intervals waits for it (and a rescore for a load): no prediction of replaced features, no
    orphan. Features are normalized with the version's own statistics.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise SettingsError(
            f"20_rescore params 'from' and 'to' need a UTC offset, got {start.isoformat()!r} and "
            f"{end.isoformat()!r}; e.g. 2026-11-25T00:00:00+00:00"
        )
    if not start < end:
        raise SettingsError(
            f"empty rescore window {start.isoformat()} .. {end.isoformat()}: 'from' must be < 'to'"
        )
    if chunk_size < 1:
        raise SettingsError(f"chunk_size must be >= 1, got {chunk_size}")
    cfg = settings.load()
    done = Rescored(version)
    window = {"from": start, "to": end}
    with (
        connection.connect(cfg.warehouse_conn_id) as reader,
        connection.connect(cfg.warehouse_conn_id) as writer,
    ):
        scorer = loader.load(reader, version)
        with reader.cursor(name="rescore_window") as cursor:
            cursor.execute(connection.query("rescore_window"), window)
            while rows := cursor.fetchmany(chunk_size):
                events, result = _rescore_chunk(writer, rows, window, scorer, run_ref)
                done = Rescored(version, done.events + events, done.chunks + 1, done.merged + result)
                log.info("rescored chunk %d (%d events) with %s: %s", done.chunks, events, version, result)
    log.info("rescored [%s, %s) with %s: %s", start.isoformat(), end.isoformat(), version, done.to_xcom())
    return done


def _rescore_chunk(
    writer: Any, rows: list[Any], window: dict[str, datetime], scorer: Any, run_ref: str
) -> tuple[int, writes.MergeResult]:
    """Score and store one chunk of the window's ``(event_id, interval_start, interval_end)`` rows in
    one transaction: the chunk's intervals cannot be loaded meanwhile, and its features are read
    again under their locks, so no score is of replaced features."""
    with writer.transaction():
        keys = [(str(row[0]), _utc(row[1])) for row in rows]
        intervals = {Interval(_utc(row[1]), _utc(row[2])) for row in rows}
        writes.lock_intervals(writer, intervals, shared=True)
        fresh = writes.events_by_key(writer, keys, window)
        frame = clean(fresh)
        scored = frame[["event_id", "ts_utc"]].assign(
            y_hat=scorer.predict(frame, use_stored_z=False),
            interval_start=pd.to_datetime(fresh["interval_start"], utc=True).dt.as_unit("us"),
        )
        return len(frame), writes.upsert_predictions(writer, scored, scorer.version, run_ref)


def _utc(value: object) -> datetime:
    assert isinstance(value, datetime)  # a timestamptz column
    return value
