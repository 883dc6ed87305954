"""Writes to the warehouse, each in one transaction, by binary COPY.

Rows come as a frame or as a function giving an iterable of frames (the row groups of a Parquet
file), so memory holds one frame. Where the target holds none of the rows yet (a first run), they are
COPYed straight into the table; otherwise, or if that meets a key already stored, they are COPYed
into a staging table and merged, so a rerun changes only rows whose values changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, astuple, dataclass
from typing import Any, NamedTuple

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from etlml import records
from etlml.interval import Interval
from etlml.quality import Audit
from etlml.warehouse import pgcopy
from etlml.warehouse.connection import query

log = logging.getLogger(__name__)

Rows = pd.DataFrame | Callable[[], Iterable[pd.DataFrame]]
"""A frame, or a function giving the frames of one (called again if a write has to be redone)."""

PROCESSED_STAGE = records.PROCESSED.copy_columns()
PREDICTIONS_STAGE = records.PREDICTION.copy_columns()
REJECTED_STAGE = records.REJECTED.copy_columns()
PROCESSED_DIRECT = (records.PROCESSED + records.PROCESSED_RUN).copy_columns()
PREDICTIONS_DIRECT = (records.PREDICTION + records.PREDICTION_RUN).copy_columns()


class MissingReferenceError(RuntimeError):
    """Predictions name a model version or events the warehouse does not hold."""


@dataclass(frozen=True)
class MergeResult:
    """Row counts of one merge: staged, newly inserted, changed, and removed as stale."""

    staged: int
    inserted: int
    updated: int
    removed: int = 0

    @property
    def unchanged(self) -> int:
        return self.staged - self.inserted - self.updated

    def to_xcom(self) -> dict[str, int]:
        return {**asdict(self), "unchanged": self.unchanged}

    def __add__(self, other: MergeResult) -> MergeResult:
        return MergeResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


class Stored(NamedTuple):
    """What the warehouse holds for an interval: loaded events, rejected records, duplicates."""

    loaded: int
    rejected: int
    deduplicated: int


def _frames(rows: Rows) -> Iterable[pd.DataFrame]:
    return [rows] if isinstance(rows, pd.DataFrame) else rows()


def copy_frames(
    cur: psycopg.Cursor[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    frames: Iterable[pd.DataFrame],
    constants: dict[str, Any] | None = None,
) -> int:
    """Binary ``COPY`` of the ``columns`` (name, PostgreSQL type) of every frame into ``table``, as one
    statement; ``constants`` are columns with the same value on every row. Returns the rows the
    server reports it copied, after checking they are the rows sent."""
    names = [name for name, _ in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    sent = 0
    with cur.copy(statement) as copy:
        copy.write(pgcopy.HEADER)
        for frame in frames:
            for chunk in pgcopy.pieces(frame.assign(**constants) if constants else frame, columns):
                copy.write(chunk)
            sent += len(frame)
        copy.write(pgcopy.TRAILER)
    if cur.rowcount != sent:
        raise RuntimeError(f"COPY into {table} reported {cur.rowcount} rows, {sent} were sent")
    return sent


def _direct(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Rows,
    constants: dict[str, Any],
) -> int | None:
    """COPY ``rows`` straight into ``table`` under a savepoint; ``None`` (and nothing written) if one
    of them has a key the table already holds."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            return copy_frames(cur, table, columns, _frames(rows), constants)
    except psycopg.errors.UniqueViolation as exc:
        log.info("%s already holds some of these keys (%s); merging instead", table, exc.diag.message_detail)
        return None


@contextmanager
def _staged(
    cur: psycopg.Cursor[Any], table: str, columns: Sequence[tuple[str, str]], rows: Rows
) -> Iterator[int]:
    """Create the temporary staging ``table`` (``sql/<table>.sql``), COPY ``rows`` into it and
    analyze it for the planner; yield the rows staged and drop the table afterwards, so one
    transaction may stage the same table again."""
    cur.execute(query(table))
    staged = copy_frames(cur, table, columns, _frames(rows))
    cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    yield staged
    cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))


def _merge(cur: psycopg.Cursor[Any], sql_name: str, params: dict[str, Any]) -> tuple[int, int]:
    """Run a statement that returns one row of two counts."""
    cur.execute(query(sql_name), params)
    row = cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    return int(row[0]), int(row[1])


def upsert_processed(
    conn: psycopg.Connection[Any], rows: Rows, interval: Interval, normalized_with: str
) -> MergeResult:
    """Make the interval's rows in ``processed_data`` equal ``rows``, in one transaction.

    New events are inserted, changed ones updated (``updated_at`` moves only when a value changed),
    and rows of this interval that ``rows`` no longer holds are removed with their predictions.
    An interval with no rows yet gets them by a plain COPY, unless an event id is stored under
    another interval (then the merge moves it here).
    """
    params = {
        "interval_start": interval.start,
        "interval_end": interval.end,
        "normalized_with": normalized_with,
    }
    with conn.transaction():
        if not _exists(conn, "interval_has_rows", params):
            sent = _direct(conn, "processed_data", PROCESSED_DIRECT, rows, params)
            if sent is not None:
                return MergeResult(staged=sent, inserted=sent, updated=0)
        with conn.cursor() as cur, _staged(cur, "stage_processed", PROCESSED_STAGE, rows) as staged:
            inserted, updated = _merge(cur, "merge_processed", params)
            cur.execute(query("count_interval_rows"), params)
            in_interval = cur.fetchone()
            # after the merge the interval holds every staged row; anything more is stale
            removed = _merge(cur, "remove_stale_processed", params)[0] if in_interval != (staged,) else 0
    return MergeResult(staged=staged, inserted=inserted, updated=updated, removed=removed)


def _exists(conn: psycopg.Connection[Any], sql_name: str, params: dict[str, Any]) -> bool:
    with conn.cursor() as cur:
        cur.execute(query(sql_name), params)
        row = cur.fetchone()
    return bool(row and row[0])


def upsert_predictions(
    conn: psycopg.Connection[Any],
    rows: Rows,
    model_version: str,
    written_by_run: str,
    *,
    copy_first: bool = False,
) -> MergeResult:
    """Upsert one model version's predictions; other versions' rows are never touched.

    The staging path checks set-wise that every prediction's event is in ``processed_data``. With
    ``copy_first`` (the pipeline, whose ``load_processed`` committed these events before ``predict``
    ran) the rows are first COPYed straight into ``predictions``, without that check; if one of
    them is already stored, they take the staging path instead.
    """
    params = {"model_version": model_version, "written_by_run": written_by_run}
    if copy_first:
        with conn.transaction():
            if not _exists(conn, "model_registered", params):
                raise MissingReferenceError(
                    f"model version {model_version!r} is not registered in model_versions"
                )
            sent = _direct(conn, "predictions", PREDICTIONS_DIRECT, rows, params)
        if sent is not None:
            return MergeResult(staged=sent, inserted=sent, updated=0)
    with (
        conn.transaction(),
        conn.cursor() as cur,
        _staged(cur, "stage_predictions", PREDICTIONS_STAGE, rows) as staged,
    ):
        known_model, orphans = _merge(cur, "check_prediction_references", params)
        if not known_model:
            raise MissingReferenceError(
                f"model version {model_version!r} is not registered in model_versions"
            )
        if orphans:
            raise MissingReferenceError(
                f"{orphans} predictions are for events missing from processed_data; "
                "run load_processed for this interval before store_predictions"
            )
        inserted, updated = _merge(cur, "merge_predictions", params)
    return MergeResult(staged=staged, inserted=inserted, updated=updated)


def upsert_rejected(
    conn: psycopg.Connection[Any], rows: Rows, interval: Interval, written_by_run: str
) -> MergeResult:
    """Make the interval's rows in ``rejected_events`` equal ``rows`` (:data:`etlml.records.REJECTED`):
    binary ``COPY`` into a staging table, one merge, then removal of rows the run no longer rejected."""
    params = {
        "interval_start": interval.start,
        "interval_end": interval.end,
        "written_by_run": written_by_run,
    }
    with (
        conn.transaction(),
        conn.cursor() as cur,
        _staged(cur, "stage_rejected", REJECTED_STAGE, rows) as staged,
    ):
        inserted, updated = _merge(cur, "merge_rejected", params)
        removed = _merge(cur, "remove_stale_rejected", params)[0]
    return MergeResult(staged=staged, inserted=inserted, updated=updated, removed=removed)


def interval_outcomes(
    conn: psycopg.Connection[Any], interval: Interval, loaded_rows: int | None = None
) -> Stored:
    """What the warehouse holds for the interval.

    ``loaded_rows``, when the caller's transaction has just established it (the rows a COPY into an
    empty interval reported, or the count a merge checked), spares counting rows that were just
    written: the first scan after a bulk load also sets every row's hint bits, which costs more
    than a tenth of a second per million rows."""
    params = {
        "interval_start": interval.start,
        "interval_end": interval.end,
        "duplicate": records.DUPLICATE,
        "loaded": loaded_rows,
    }
    with conn.cursor() as cur:
        cur.execute(query("count_interval_outcomes"), params)
        row = cur.fetchone()
    assert row is not None  # scalar subqueries always return one row
    return Stored(int(row[0]), int(row[1]), int(row[2]))


def store_audit(
    conn: psycopg.Connection[Any],
    dag_id: str,
    interval: Interval,
    written_by_run: str,
    audit: Audit,
    *,
    first_entry_id: str | None = None,
) -> None:
    """Upsert the run's accounting into ``run_audit``, with the stream position the interval began
    at (``first_entry_id``, stream sources only)."""
    counts = audit.counts
    params = {
        "source": audit.source,
        "extracted": counts.extracted,
        "loaded": counts.accepted,
        "rejected": counts.rejected,
        "deduplicated": counts.deduplicated,
        "rejected_share": counts.rejected_share,
        "max_rejected_share": audit.max_rejected_share,
        "gate": audit.gate,
        "by_reason": Jsonb(counts.by_reason),
        "extra_fields": Jsonb(counts.extra_fields),
        "extra_field_names": counts.extra_field_names,
        "imputed": Jsonb(counts.imputed),
        "dag_id": dag_id,
        "interval_start": interval.start,
        "interval_end": interval.end,
        "written_by_run": written_by_run,
        "first_entry_id": first_entry_id,
    }
    with conn.cursor() as cur:
        cur.execute(query("upsert_run_audit"), params)
