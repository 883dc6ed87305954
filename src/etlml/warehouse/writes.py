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
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

import etlml
from etlml import records, settings
from etlml.ingest.ledger import Ledger
from etlml.interval import Interval
from etlml.quality import Audit
from etlml.warehouse import pgcopy
from etlml.warehouse.connection import query

log = logging.getLogger(__name__)

Rows = pd.DataFrame | Callable[[], Iterable[pd.DataFrame]]
"""A frame, or a function giving the frames of one (called again if a write has to be redone)."""

PROCESSED_STAGE = records.PROCESSED.copy_columns()
PREDICTIONS_STAGE = (records.PREDICTION + records.PREDICTION_INTERVAL).copy_columns()
REJECTED_STAGE = records.REJECTED.copy_columns()
PROCESSED_DIRECT = (records.PROCESSED + records.PROCESSED_RUN).copy_columns()
PREDICTIONS_DIRECT = (
    records.PREDICTION + records.PREDICTION_INTERVAL + records.PREDICTION_RUN
).copy_columns()


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


class _Undo(Exception):
    """Raised inside a savepoint to roll a straight COPY back (see :func:`_direct`)."""


def _direct(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Rows,
    constants: dict[str, Any],
    *,
    conflict: tuple[str, dict[str, Any]] | None = None,
) -> int | None:
    """COPY ``rows`` straight into ``table`` under a savepoint; ``None`` (and nothing written) if one
    of them has a key the table already holds, or if the statement ``conflict`` (``sql/<name>.sql``
    and its parameters, run after the COPY) finds one that breaks a rule no key enforces."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            sent = copy_frames(cur, table, columns, _frames(rows), constants)
            if conflict is not None:
                cur.execute(query(conflict[0]), conflict[1])
                row = cur.fetchone()
                if row and row[0]:
                    raise _Undo(conflict)
            return sent
    except psycopg.errors.UniqueViolation as exc:
        log.info("%s already holds some of these keys (%s); merging instead", table, exc.diag.message_detail)
        return None
    except _Undo:
        log.info("%s: %s found rows to refuse; merging instead", table, conflict and conflict[0])
        return None


@contextmanager
def _staged(
    cur: psycopg.Cursor[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Rows,
    constants: dict[str, Any] | None = None,
) -> Iterator[int]:
    """Create the temporary staging ``table`` (``sql/<table>.sql``), COPY ``rows`` (with the
    ``constants`` columns) into it and analyze it for the planner; yield the rows staged and drop
    the table afterwards, so one transaction may stage the same table again."""
    cur.execute(query(table))
    staged = copy_frames(cur, table, columns, _frames(rows), constants)
    cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    yield staged
    cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))


def _merge(cur: psycopg.Cursor[Any], sql_name: str, params: dict[str, Any]) -> tuple[int, int]:
    """Run a statement that returns one row of two counts."""
    first, second, *_ = _counts(cur, sql_name, params)
    return first, second


def _counts(
    cur: psycopg.Cursor[Any], sql_name: str | None = None, params: dict[str, Any] | None = None
) -> list[int]:
    """The one row of counts a statement returns (the one just executed, without ``sql_name``)."""
    if sql_name is not None:
        cur.execute(query(sql_name), params)
    row = cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    return [int(v) for v in row]


@dataclass(frozen=True)
class ProcessedMerge:
    """What :func:`upsert_processed` did: the row counts, the predictions it deleted because their
    events changed, and the staged events it refused because another interval holds their id
    (``event_id``, ``held_start``, ``held_end``; the first stored delivery wins)."""

    result: MergeResult
    outdated_predictions: int
    redelivered: pd.DataFrame

    @property
    def loaded_rows(self) -> int:
        """The interval's rows after the merge: every staged event but the redelivered ones."""
        return self.result.staged - len(self.redelivered)


def ensure_partitions(conn: psycopg.Connection[Any], first: datetime, last: datetime) -> list[str]:
    """Create, in a transaction (or savepoint) of their own, the day partitions of ``processed_data``,
    ``predictions`` and ``rejected_events`` from ``first``'s UTC day to ``last``'s that do not exist
    yet; returns those created. Cheap when they all exist (a catalog lookup per table and day)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("ensure_partitions"), {"from": first, "to": last})
        return [str(row[0]) for row in cur.fetchall()]


@dataclass(frozen=True)
class DroppedDay:
    """One UTC day whose partitions retention dropped, with the rows they held (the planner's estimate
    as of the last ANALYZE: counting would scan them)."""

    day: str
    processed_rows: int
    prediction_rows: int
    rejected_rows: int


def drop_partitions_before(
    conn: psycopg.Connection[Any], before: datetime, lock_timeout: timedelta = timedelta(seconds=30)
) -> list[DroppedDay]:
    """Drop the day partitions of every UTC day that ends on or before ``before``: events,
    predictions and rejected records (and the labels of those events) of a day go together, in one
    transaction. Each drop takes an exclusive lock on the parent table for a moment; waiting longer
    than ``lock_timeout`` behind a long write fails the call and drops nothing."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout.total_seconds() * 1000)}ms",)
        )
        cur.execute(query("drop_partitions_before"), {"before": before})
        return [DroppedDay(str(d), int(p), int(pr), int(r)) for d, p, pr, r in cur.fetchall()]


def dedup_window(interval: Interval, window: timedelta) -> dict[str, datetime]:
    """The interval starts whose rows an event of ``interval`` is checked against for redelivery."""
    return {"window_start": interval.start - window, "window_end": interval.end + window}


def upsert_processed(
    conn: psycopg.Connection[Any],
    rows: Rows,
    interval: Interval,
    normalized_with: str,
    *,
    window: timedelta = timedelta(days=settings.DEFAULT_DEDUP_WINDOW_DAYS),
) -> ProcessedMerge:
    """Make the interval's rows in ``processed_data`` equal ``rows``, in one transaction.

    New events are inserted; changed ones updated (``updated_at`` moves only when a value changed)
    and their predictions deleted; rows of this interval that ``rows`` no longer holds are removed
    with their predictions. An event id stored under another interval starting within ``window`` of
    this one is left where it is, and reported as redelivered. An interval with no rows yet gets them
    by a plain COPY, unless an id is already stored (then the merge finds which). The interval's day
    partitions are created first if missing (:func:`ensure_partitions`).
    """
    params = {
        "interval_start": interval.start,
        "interval_end": interval.end,
        "normalized_with": normalized_with,
        **dedup_window(interval, window),
    }
    ensure_partitions(conn, interval.start, interval.start)
    with conn.transaction():
        if not _exists(conn, "interval_has_rows", params):
            constants = {k: params[k] for k in records.PROCESSED_RUN.names}
            sent = _direct(
                conn,
                "processed_data",
                PROCESSED_DIRECT,
                rows,
                constants,
                conflict=("loaded_redelivered", params),
            )
            if sent is not None:
                return ProcessedMerge(
                    MergeResult(staged=sent, inserted=sent, updated=0), 0, _no_redeliveries()
                )
        with conn.cursor() as cur, _staged(cur, "stage_processed", PROCESSED_STAGE, rows) as staged:
            return _merge_staged_processed(cur, staged, params)


def _merge_staged_processed(cur: psycopg.Cursor[Any], staged: int, params: dict[str, Any]) -> ProcessedMerge:
    """Merge ``stage_processed`` into the interval: refuse the ids another interval of the window
    holds, upsert the rest, delete the predictions of changed rows, remove the rows no longer staged."""
    cur.execute(query("stage_redelivered"))
    cur.execute(query("lock_redelivery_check"))
    cur.execute(query("stage_redelivered_in_window"), params)
    cur.execute(query("merge_processed"), params)
    inserted, updated, redelivered, changed = _counts(cur)
    outdated = _outdated_predictions(cur, params) if changed else 0
    cur.execute(query("count_interval_rows"), params)
    in_interval = _counts(cur)[0]
    # after the merge the interval holds every staged row it did not refuse; anything more is stale
    removed = _counts(cur, "remove_stale_processed", params)[0] if in_interval != staged - redelivered else 0
    refused = _redelivered(cur) if redelivered else _no_redeliveries()
    merge = MergeResult(staged=staged, inserted=inserted, updated=updated, removed=removed)
    return ProcessedMerge(merge, outdated, refused)


def _outdated_predictions(cur: psycopg.Cursor[Any], params: dict[str, Any]) -> int:
    cur.execute("ANALYZE stage_changed")
    cur.execute(query("delete_outdated_predictions"), params)
    return cur.rowcount


def _no_redeliveries() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": pd.Series(dtype="string"),
            "held_start": pd.Series(dtype="datetime64[us, UTC]"),
            "held_end": pd.Series(dtype="datetime64[us, UTC]"),
        }
    )


def _redelivered(cur: psycopg.Cursor[Any]) -> pd.DataFrame:
    cur.execute(query("redelivered_events"))
    found = pd.DataFrame(cur.fetchall(), columns=["event_id", "held_start", "held_end"])
    return pd.concat([_no_redeliveries(), found], ignore_index=True).astype(_no_redeliveries().dtypes)


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
    interval: Interval | None = None,
    copy_first: bool = False,
) -> MergeResult:
    """Upsert one model version's predictions; other versions' rows are never touched.

    ``rows`` are of events of ``interval``, or, without it, carry each event's ``interval_start``.
    The staging path checks set-wise that every prediction's event is in ``processed_data`` in that
    interval. With ``copy_first`` (the pipeline, whose ``load_processed`` committed these events
    before ``predict`` ran) the rows are first COPYed straight into ``predictions``, without that
    check; if one of them is already stored, they take the staging path instead.
    """
    params = {"model_version": model_version, "written_by_run": written_by_run}
    constants = {} if interval is None else {"interval_start": interval.start}
    if copy_first:
        if interval is None:
            raise ValueError("copy_first stores the predictions of one interval: pass interval")
        with conn.transaction():
            if not _exists(conn, "model_registered", params):
                raise MissingReferenceError(
                    f"model version {model_version!r} is not registered in model_versions"
                )
            sent = _direct(conn, "predictions", PREDICTIONS_DIRECT, rows, {**params, **constants})
        if sent is not None:
            return MergeResult(staged=sent, inserted=sent, updated=0)
    with (
        conn.transaction(),
        conn.cursor() as cur,
        _staged(cur, "stage_predictions", PREDICTIONS_STAGE, rows, constants) as staged,
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
    ensure_partitions(conn, interval.start, interval.start)
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
        "deduplicated": list(records.DEDUPLICATED),
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
    load_id: str | None,
    first_entry_id: str | None = None,
    files: dict[str, int] | None = None,
    ledger: Ledger | None = None,
    accepted: dict[str, Any] | None = None,
    dag_version_id: str | None = None,
    model_versions: Sequence[str] | None = None,
) -> None:
    """Upsert the run's accounting into ``run_audit``, as the load ``load_id`` of the interval (``None``
    for runs whose rows no prediction refers to, as label runs), with the stream position the
    interval began at (``first_entry_id``, stream sources only), what the run read of its source
    (``ledger``), who accepted that it read less than the run before (``accepted``: kept until another
    acceptance replaces it), the code that stored it (this package's version, Airflow's
    ``dag_version_id``) and the model versions the run scores with."""
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
        "load_id": load_id,
        "first_entry_id": first_entry_id,
        "files": None if files is None else Jsonb(files),
        "ledger": None if ledger is None else Jsonb(ledger.to_json()),
        "accepted": None if accepted is None else Jsonb(accepted),
        "etlml_version": etlml.version(),
        "dag_version_id": dag_version_id,
        "model_versions": None if model_versions is None else list(model_versions),
    }
    with conn.cursor() as cur:
        cur.execute(query("upsert_run_audit"), params)


class StoredInterval(NamedTuple):
    """What a DAG's latest load of an interval left: its source, load, run, and the rows it holds."""

    source: str
    load_id: str | None
    written_by_run: str
    processed: int
    rejected: int
    ledger: Ledger | None = None

    @property
    def holds_rows(self) -> bool:
        return self.processed + self.rejected > 0


def _interval_params(dag_id: str, interval: Interval) -> dict[str, Any]:
    return {"dag_id": dag_id, "interval_start": interval.start, "interval_end": interval.end}


def stored_interval(conn: psycopg.Connection[Any], dag_id: str, interval: Interval) -> StoredInterval | None:
    """The interval's stored audit and row counts (``None``: never loaded), its audit row locked for
    update until the caller's transaction ends."""
    with conn.cursor() as cur:
        cur.execute(query("interval_audit"), _interval_params(dag_id, interval))
        row = cur.fetchone()
    if row is None:
        return None
    source, load_id, run, processed, rejected, ledger, extracted, files, first = row
    return StoredInterval(
        str(source),
        None if load_id is None else str(load_id),
        str(run),
        int(processed),
        int(rejected),
        Ledger.of_audit(ledger, int(extracted), files, first),
    )


def stored_ledger(conn: psycopg.Connection[Any], dag_id: str, interval: Interval) -> Ledger | None:
    """What the interval's latest stored run read (``None``: never stored)."""
    with conn.cursor() as cur:
        cur.execute(query("interval_ledger"), _interval_params(dag_id, interval))
        row = cur.fetchone()
    return None if row is None else Ledger.of_audit(row[0], int(row[1]), row[2], row[3])


def record_refusal(
    conn: psycopg.Connection[Any], dag_id: str, interval: Interval, refusal: dict[str, Any]
) -> None:
    """Mark the interval's audit row: its latest run found the source smaller and loaded nothing."""
    params = {**_interval_params(dag_id, interval), "refusal": Jsonb(refusal)}
    with conn.cursor() as cur:
        cur.execute(query("record_smaller_source_refused"), params)


def current_load(
    conn: psycopg.Connection[Any], dag_id: str, interval: Interval
) -> tuple[str | None, str] | None:
    """``(load_id, written_by_run)`` of the interval's latest load (``None``: never loaded), share-
    locked: no load of the interval commits before the caller's transaction ends."""
    with conn.cursor() as cur:
        cur.execute(query("current_load"), _interval_params(dag_id, interval))
        row = cur.fetchone()
    if row is None:
        return None
    return (None if row[0] is None else str(row[0])), str(row[1])


def record_challenger_error(
    conn: psycopg.Connection[Any], dag_id: str, interval: Interval, load_id: str, error: str
) -> bool:
    """Append why the challenger could not score to the audit of load ``load_id``; ``False`` if the
    interval has been loaded again since."""
    params = {**_interval_params(dag_id, interval), "load_id": load_id, "error": error}
    with conn.cursor() as cur:
        cur.execute(query("record_challenger_error"), params)
        return cur.rowcount == 1


def lock_intervals(conn: psycopg.Connection[Any], intervals: Iterable[Interval], *, shared: bool) -> None:
    """Take the per-interval lock of each interval's rows until the transaction ends: exclusive for a
    load (one load of an interval at a time), shared for stores and rescores (which may run
    together, never beside a load). Taken in interval order, so lockers of several never deadlock;
    a lock held by another run is waited for, and logged."""
    with conn.cursor() as cur:
        for interval in sorted(set(intervals), key=lambda i: (i.start, i.end)):
            params = {"key": interval.key, "shared": shared}
            cur.execute(query("lock_interval"), params)
            row = cur.fetchone()
            if row is None or not row[0]:
                log.info("waiting for the lock of %s: another run is writing its rows", interval.key)
                cur.execute(query("wait_interval_lock"), params)


def events_by_key(
    conn: psycopg.Connection[Any], keys: Sequence[tuple[str, datetime]], window: dict[str, Any]
) -> pd.DataFrame:
    """The stored raw features (:data:`etlml.records.EVENT`) and ``interval_start`` of the events
    ``keys`` (``event_id``, ``interval_start``) whose ``ts_utc`` is in ``window`` (``from``, ``to``),
    by processed_data's key; an event removed since it was listed is not returned."""
    params = {"ids": [k[0] for k in keys], "starts": [k[1] for k in keys], **window}
    with conn.cursor() as cur:
        cur.execute(query("rescore_events"), params)
        rows = cur.fetchall()
    names = [*records.EVENT.names, *records.PREDICTION_INTERVAL.names]
    return pd.DataFrame.from_records(rows, columns=names)
