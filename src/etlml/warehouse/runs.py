"""What the warehouse says about a DAG's runs: the intervals in a window that never ran successfully,
and the landing files each interval's latest load read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from etlml.interval import Interval, every
from etlml.warehouse.connection import query


def gaps(conn: psycopg.Connection[Any], dag_id: str, start: datetime, end: datetime) -> list[Interval]:
    """The 10-minute intervals wholly in ``[start, end)`` without a ``run_audit`` row whose gate
    passed, oldest first: the intervals to backfill."""
    with conn.cursor() as cur:
        cur.execute(query("passed_intervals"), {"dag_id": dag_id, "from": start, "to": end})
        passed = {Interval(s, e) for s, e in cur.fetchall()}
    return [interval for interval in every(start, end) if interval not in passed]


@dataclass(frozen=True)
class TrimPoint:
    """Where the event stream may be trimmed: before ``before``, and why there (the retention, or
    ``oldest_unstored``, the oldest interval since the start date whose run has not stored it)."""

    before: datetime
    retention: datetime
    oldest_unstored: datetime | None

    @property
    def why(self) -> str:
        if self.oldest_unstored is None or self.retention <= self.oldest_unstored:
            return f"entries from {self.retention.isoformat()} on are within the retention"
        return (
            f"entries from {self.oldest_unstored.isoformat()} on are kept, though older than the retention "
            f"({self.retention.isoformat()}): the interval starting then has no stored run that passed "
            "its quality gate, so they have not been loaded"
        )


def trim_point(conn: psycopg.Connection[Any], dag_id: str, start: datetime, retention: datetime) -> TrimPoint:
    """How far the stream may be trimmed: to ``retention``, but never past the oldest interval of
    ``dag_id`` from ``start`` (``ETLML_START_DATE``) on without a stored run that passed its gate."""
    aligned = start.replace(second=0, microsecond=0) - timedelta(minutes=start.minute % 10)
    with conn.cursor() as cur:
        cur.execute(query("oldest_unstored_interval"), {"dag_id": dag_id, "from": aligned, "to": retention})
        row = cur.fetchone()
    oldest = None if row is None or row[0] is None else row[0]
    before = retention if oldest is None else min(retention, oldest)
    return TrimPoint(before, retention, oldest)


@dataclass(frozen=True)
class Changed:
    """An interval whose partition differs from what its latest load read: files added since, files
    gone, and files whose size changed."""

    interval: Interval
    added: list[str]
    removed: list[str]
    resized: list[str]

    def to_json(self) -> dict[str, object]:
        return {
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "added": self.added,
            "removed": self.removed,
            "resized": self.resized,
        }


def changed(
    conn: psycopg.Connection[Any],
    dag_id: str,
    start: datetime,
    end: datetime,
    now_listed: Callable[[Interval], dict[str, int] | None],
) -> list[Changed]:
    """The intervals in ``[start, end)`` whose partition, as ``now_listed`` lists it (``None``: the
    partition is gone, which changes nothing: absence removes no row), differs from the files the
    interval's latest load recorded, oldest first."""
    with conn.cursor() as cur:
        cur.execute(query("read_files"), {"dag_id": dag_id, "from": start, "to": end})
        rows = cur.fetchall()
    found = []
    for interval_start, interval_end, read in rows:
        interval = Interval(interval_start, interval_end)
        now = now_listed(interval)
        if now is None or now == read:
            continue
        found.append(
            Changed(
                interval,
                added=sorted(set(now) - set(read)),
                removed=sorted(set(read) - set(now)),
                resized=sorted(name for name in set(now) & set(read) if now[name] != read[name]),
            )
        )
    return found
