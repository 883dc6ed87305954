"""Writes to the warehouse: binary COPY into a staging table, then one merge, in one transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from etlml import FEATURES, pgcopy
from etlml.contract import DUPLICATE
from etlml.db import query
from etlml.interval import Interval

PROCESSED_STAGE: tuple[tuple[str, str], ...] = (
    ("event_id", "text"),
    ("ts_utc", "timestamptz"),
    *((f, "float8") for f in FEATURES),
    *((f"{f}_z", "float8") for f in FEATURES),
    *((f"{f}_imputed", "bool") for f in FEATURES),
)
PREDICTIONS_STAGE: tuple[tuple[str, str], ...] = (
    ("event_id", "text"),
    ("ts_utc", "timestamptz"),
    ("y_hat", "float8"),
)
REJECTED_STAGE: tuple[tuple[str, str], ...] = (
    ("source_file", "text"),
    ("row_number", "int8"),
    ("event_id", "text"),
    ("reason", "text"),
    ("message", "text"),
    ("raw", "bytea"),
)


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

    def as_xcom(self) -> dict[str, int]:
        return {**asdict(self), "unchanged": self.unchanged}


def copy_frame(
    cur: psycopg.Cursor[Any], table: str, columns: Sequence[tuple[str, str]], frame: pd.DataFrame
) -> None:
    """Binary ``COPY`` of ``frame``'s ``columns`` (name, PostgreSQL type) into ``table``."""
    names = [name for name, _ in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with cur.copy(statement) as copy:
        for chunk in pgcopy.chunks(frame, columns):
            copy.write(chunk)


@contextmanager
def _staged(
    cur: psycopg.Cursor[Any], table: str, columns: Sequence[tuple[str, str]], frame: pd.DataFrame
) -> Iterator[None]:
    """Create the temporary staging ``table`` (``sql/<table>.sql``), COPY ``frame`` into it and
    analyze it for the planner; drop it afterwards, so one transaction may stage the same table again."""
    cur.execute(query(table))
    copy_frame(cur, table, columns, frame)
    cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    yield
    cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))


def _merge(cur: psycopg.Cursor[Any], sql_name: str, params: dict[str, Any]) -> tuple[int, int]:
    """Run a statement that returns one row of two counts."""
    cur.execute(query(sql_name), params)
    row = cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    return int(row[0]), int(row[1])


def upsert_processed(
    conn: psycopg.Connection[Any], frame: pd.DataFrame, interval: Interval, normalized_with: str
) -> MergeResult:
    """Make the interval's rows in ``processed_data`` equal ``frame``, in one transaction.

    New events are inserted, changed ones updated (``updated_at`` moves only when a value changed),
    and rows of this interval that the frame no longer holds are removed with their predictions.
    """
    params = {
        "interval_start": interval.start,
        "interval_end": interval.end,
        "normalized_with": normalized_with,
    }
    with conn.transaction(), conn.cursor() as cur, _staged(cur, "stage_processed", PROCESSED_STAGE, frame):
        inserted, updated = _merge(cur, "merge_processed", params)
        cur.execute(query("count_interval_rows"), params)
        in_interval = cur.fetchone()
        # after the merge the interval holds every staged row; anything more is stale
        removed = _merge(cur, "remove_stale_processed", params)[0] if in_interval != (len(frame),) else 0
    return MergeResult(staged=len(frame), inserted=inserted, updated=updated, removed=removed)


def upsert_predictions(
    conn: psycopg.Connection[Any], frame: pd.DataFrame, model_version: str, written_by_run: str
) -> MergeResult:
    """Upsert one model version's predictions; other versions' rows are never touched."""
    params = {"model_version": model_version, "written_by_run": written_by_run}
    with (
        conn.transaction(),
        conn.cursor() as cur,
        _staged(cur, "stage_predictions", PREDICTIONS_STAGE, frame),
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
    return MergeResult(staged=len(frame), inserted=inserted, updated=updated)


def upsert_rejected(
    conn: psycopg.Connection[Any], frame: pd.DataFrame, interval: Interval, written_by_run: str
) -> MergeResult:
    """Make the interval's rows in ``rejected_events`` equal ``frame`` (``contract.REJECTED_COLUMNS``):
    binary ``COPY`` into a staging table, one merge, then removal of rows the run no longer rejected."""
    params = {
        "interval_start": interval.start,
        "interval_end": interval.end,
        "written_by_run": written_by_run,
    }
    with conn.transaction(), conn.cursor() as cur, _staged(cur, "stage_rejected", REJECTED_STAGE, frame):
        inserted, updated = _merge(cur, "merge_rejected", params)
        removed = _merge(cur, "remove_stale_rejected", params)[0]
    return MergeResult(staged=len(frame), inserted=inserted, updated=updated, removed=removed)


def interval_outcomes(conn: psycopg.Connection[Any], interval: Interval) -> tuple[int, int, int]:
    """Rows the warehouse holds for the interval: (loaded events, rejected records, duplicates)."""
    params = {"interval_start": interval.start, "interval_end": interval.end, "duplicate": DUPLICATE}
    with conn.cursor() as cur:
        cur.execute(query("count_interval_outcomes"), params)
        row = cur.fetchone()
    assert row is not None  # scalar subqueries always return one row
    return int(row[0]), int(row[1]), int(row[2])


def store_audit(
    conn: psycopg.Connection[Any], dag_id: str, interval: Interval, written_by_run: str, audit: dict[str, Any]
) -> None:
    """Upsert the run's accounting (``quality.Audit.as_params()``) into ``run_audit``."""
    params = {
        **audit,
        "dag_id": dag_id,
        "interval_start": interval.start,
        "interval_end": interval.end,
        "written_by_run": written_by_run,
    }
    with conn.cursor() as cur:
        cur.execute(query("upsert_run_audit"), params)
