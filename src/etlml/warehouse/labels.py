"""Labels in the warehouse: one label run's accepted labels upserted into ``labels`` and its
quarantine made equal to what it rejected, set-wise, in the caller's transaction."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg

from etlml import records
from etlml.interval import Interval
from etlml.warehouse.connection import query
from etlml.warehouse.writes import MergeResult, copy_frames

log = logging.getLogger(__name__)

LABELS_STAGE = (records.PROVENANCE + records.LABEL + records.RAW).copy_columns()
REJECTED_STAGE = records.REJECTED.copy_columns()


@dataclass(frozen=True)
class StoredLabels:
    """What storing one run's labels did.

    ``matched``: accepted labels whose event is stored (each now in ``labels``: ``inserted``,
    ``updated``, unchanged, or left as it was because a later delivery is stored, ``older``);
    ``removed``: labels this label interval delivered before that its files no longer hold;
    ``unknown``: accepted labels without a stored event, quarantined as ``unknown_event``;
    ``rejected``/``deduplicated``: the rows ``rejected_labels`` holds for the interval afterwards;
    ``quarantine``: what the merge of the quarantine changed; ``intervals``: the intervals of the events
    whose labels were stored or removed (oldest first), what monitoring recomputes."""

    matched: int
    unknown: int
    inserted: int
    updated: int
    older: int
    removed: int
    rejected: int
    deduplicated: int
    quarantine: MergeResult
    intervals: tuple[Interval, ...] = ()

    def to_xcom(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "quarantine": self.quarantine.to_xcom(),
            "intervals": [interval.key for interval in self.intervals],
        }


def lock(conn: psycopg.Connection[Any], interval: Interval) -> None:
    """Wait for, then hold until the transaction ends, the lock of the label interval."""
    conn.execute(query("lock_label_interval"), {"key": interval.key})


def interval_loaded(conn: psycopg.Connection[Any], dag_id: str, interval: Interval) -> bool:
    """Whether ``dag_id`` has committed a load of ``interval`` (its row in ``run_audit``)."""
    params = {"dag_id": dag_id, "interval_start": interval.start, "interval_end": interval.end}
    row = conn.execute(query("interval_loaded"), params).fetchone()
    return bool(row and row[0])


def store(
    conn: psycopg.Connection[Any],
    labels: pd.DataFrame,
    rejected: pd.DataFrame,
    interval: Interval,
    written_by_run: str,
    *,
    window_start: datetime,
    unknown_message: str,
) -> StoredLabels:
    """Store one label run of ``interval``, inside the caller's transaction.

    ``labels``: the accepted labels (:data:`etlml.records.LABEL` with provenance and ``raw``);
    ``rejected``: the records the contract rejected (:data:`etlml.records.REJECTED`). The labels are
    COPYed into a staging table and matched to stored events by id, among the intervals that start
    in ``[window_start, interval.end)``; matched ones are upserted into ``labels`` (the latest
    delivery wins), the others quarantined as ``unknown_event`` with ``unknown_message``. The labels
    this label interval delivered before and no longer delivers are removed (unless a later delivery
    holds them), so what the interval delivered equals its latest delivery. The interval's
    ``rejected_labels`` rows are then made equal to the contract's rejections plus those.
    """
    bounds = {"interval_start": interval.start, "interval_end": interval.end}
    delivery = {"delivered_in": interval.start}
    with conn.cursor() as cur:
        cur.execute(query("stage_labels"))
        copy_frames(cur, "stage_labels", LABELS_STAGE, [labels.astype(_stage_dtypes())])
        cur.execute("ANALYZE stage_labels")
        cur.execute(query("match_labels"), {"window_start": window_start, **bounds})
        matched = cur.rowcount
        cur.execute(query("stage_rejected_labels"))
        copy_frames(
            cur, "stage_rejected_labels", REJECTED_STAGE, [rejected.astype(records.REJECTED.dtypes())]
        )
        cur.execute(query("quarantine_unknown_labels"), {"message": unknown_message})
        unknown = cur.rowcount
        older = _one(cur, "older_labels", delivery)[0]
        intervals = _labelled_intervals(cur, delivery)
        inserted, updated = _one(cur, "merge_labels", {"written_by_run": written_by_run, **delivery})
        removed = _one(cur, "remove_withdrawn_labels", delivery)[0]
        params = {**bounds, "written_by_run": written_by_run}
        merged_in, merged_up = _one(cur, "merge_rejected_labels", params)
        stale = _one(cur, "remove_stale_rejected_labels", bounds)[0]
        held_rejected, held_duplicates = _one(cur, "count_rejected_labels", bounds)
    if matched + unknown != len(labels):
        raise RuntimeError(f"{len(labels)} labels staged, {matched} matched and {unknown} unknown")
    quarantine = MergeResult(len(rejected) + unknown, merged_in, merged_up, stale)
    counts = (matched, unknown, inserted, updated, older, removed, held_rejected, held_duplicates)
    return StoredLabels(*counts, quarantine, intervals)


def _labelled_intervals(cur: psycopg.Cursor[Any], delivery: dict[str, Any]) -> tuple[Interval, ...]:
    """The intervals of the events whose labels this delivery stores or withdraws (read before the
    merge and the removal change ``labels``)."""
    cur.execute(query("labelled_intervals"), delivery)
    return tuple(Interval(start, end) for start, end in cur.fetchall())


def _stage_dtypes() -> dict[str, Any]:
    return (records.PROVENANCE + records.LABEL + records.RAW).dtypes()


def _one(cur: psycopg.Cursor[Any], name: str, params: dict[str, Any]) -> list[int]:
    cur.execute(query(name), params)
    row = cur.fetchone()
    assert row is not None  # aggregates return one row
    return [int(v) for v in row]
