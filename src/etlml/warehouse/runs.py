"""What the warehouse says about a DAG's runs: the intervals in a window that never ran successfully,
and the landing files each interval's latest load read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg

from etlml.ingest.ledger import Ledger
from etlml.interval import Interval, every, on_grid
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
    # the first interval is the timetable's first tick at or after the start date: one starting
    # before it never runs, so it is never stored and must not hold the trim back for good
    aligned = on_grid(start, up=True)
    with conn.cursor() as cur:
        cur.execute(query("oldest_unstored_interval"), {"dag_id": dag_id, "from": aligned, "to": retention})
        row = cur.fetchone()
    oldest = None if row is None or row[0] is None else row[0]
    before = retention if oldest is None else min(retention, oldest)
    return TrimPoint(before, retention, oldest)


@dataclass(frozen=True)
class Changed:
    """An interval whose source now differs from what its latest load read (the ledger): files added
    since, files gone, files whose size changed or whose content changed at the same size
    (``rewritten``: another checksum or ETag), and a stream's entries (``entries``: how many the run
    read and how many the interval holds now)."""

    dag_id: str
    interval: Interval
    source: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    entries: dict[str, int] | None = None

    @property
    def what(self) -> str:
        """One line saying what changed."""
        parts = [
            f"{len(names)} file(s) {kind}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
            for kind, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("resized", self.resized),
                ("rewritten", self.rewritten),
            )
            if names
        ]
        if self.entries is not None:
            parts.append(f"stream entries: {self.entries['read']} read, {self.entries['now']} now")
        return "; ".join(parts)

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {
            "dag_id": self.dag_id,
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "source": self.source,
        }
        if self.entries is None:
            document.update(
                added=self.added, removed=self.removed, resized=self.resized, rewritten=self.rewritten
            )
        else:
            document["entries"] = self.entries
        document["what"] = self.what
        return document


NowRead = Callable[[str, str, Interval, Ledger], "Ledger | None"]
"""``(dag_id, source, interval, stored ledger)`` -> what the source holds for the interval now
(``None``: it cannot tell, or the partition or the interval's entries are gone, which changes
nothing: absence removes no row)."""


def changed(
    conn: psycopg.Connection[Any],
    dag_ids: Sequence[str],
    start: datetime,
    end: datetime,
    now_read: NowRead,
) -> list[Changed]:
    """The intervals of ``dag_ids`` in ``[start, end)`` whose source, as ``now_read`` reads it now,
    differs from what the interval's latest load recorded, oldest first."""
    found = []
    for dag_id in dag_ids:
        with conn.cursor() as cur:
            cur.execute(query("read_ledgers"), {"dag_id": dag_id, "from": start, "to": end})
            rows = cur.fetchall()
        for interval_start, interval_end, source, ledger, files, extracted, first in rows:
            interval = Interval(interval_start, interval_end)
            read = Ledger.of_audit(ledger, int(extracted), files, first)
            if read.files is None and read.stream is None:
                continue  # the simulator's: made, not read
            now = now_read(dag_id, str(source), interval, read)
            difference = None if now is None else _difference(dag_id, interval, str(source), read, now)
            if difference is not None:
                found.append(difference)
    return sorted(found, key=lambda c: (c.interval.start, c.dag_id))


def _difference(dag_id: str, interval: Interval, source: str, read: Ledger, now: Ledger) -> Changed | None:
    if read.stream is not None:
        stream = now.stream
        if stream is None:
            return None
        same = (stream.entries, stream.first_entry_id, stream.last_entry_id) == (
            read.stream.entries,
            read.stream.first_entry_id,
            read.stream.last_entry_id or stream.last_entry_id,
        )
        if same:
            return None
        return Changed(dag_id, interval, source, entries={"read": read.stream.entries, "now": stream.entries})
    before, after = read.files or {}, now.files or {}
    common = set(before) & set(after)
    change = Changed(
        dag_id,
        interval,
        source,
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        resized=sorted(n for n in common if before[n].size != after[n].size),
        rewritten=sorted(
            n for n in common if before[n].size == after[n].size and before[n].same_content(after[n]) is False
        ),
    )
    return change if change.what else None


@dataclass(frozen=True)
class IntervalStatus:
    """Where one interval stands: its latest load's accounting (``None`` where no run stored it), the
    versions it was scored with, its label coverage and when it was last monitored, the code that
    stored it, and its flags: ``gap`` (ended, no stored run that passed its gate), ``changed`` (its
    source differs from what the run read; set by a caller that read the sources), and
    ``smaller_source_refused`` / ``smaller_source_accepted`` (the ledger's rule)."""

    interval_start: datetime
    interval_end: datetime
    source: str | None
    extracted: int | None
    loaded: int | None
    rejected: int | None
    deduplicated: int | None
    gate: str | None
    model_versions: list[str] | None
    challenger_error: str | None
    n_predictions: int | None
    n_labeled: int | None
    monitored_at: datetime | None
    etlml_version: str | None
    dag_version_id: str | None
    written_by_run: str | None
    checked_at: datetime | None
    smaller_source_refused: dict[str, Any] | None
    smaller_source_accepted: dict[str, Any] | None
    ended: bool = True
    changed: bool = False

    @property
    def label_coverage(self) -> float | None:
        if not self.n_predictions or self.n_labeled is None:
            return None
        return self.n_labeled / self.n_predictions

    @property
    def flags(self) -> list[str]:
        found = []
        if self.ended and self.gate != "passed":
            found.append("gap")
        if self.changed:
            found.append("changed")
        if self.smaller_source_refused is not None:
            found.append("smaller_source_refused")
        if self.smaller_source_accepted is not None:
            found.append("smaller_source_accepted")
        return found

    def to_json(self) -> dict[str, Any]:
        coverage = self.label_coverage
        return {
            "interval_start": self.interval_start.isoformat(),
            "interval_end": self.interval_end.isoformat(),
            "source": self.source,
            "extracted": self.extracted,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "deduplicated": self.deduplicated,
            "gate": self.gate,
            "model_versions": self.model_versions,
            "challenger_error": self.challenger_error,
            "label_coverage": None if coverage is None else round(coverage, 4),
            "labeled": self.n_labeled,
            "monitored_at": None if self.monitored_at is None else self.monitored_at.isoformat(),
            "etlml_version": self.etlml_version,
            "dag_version_id": self.dag_version_id,
            "stored_by_run": self.written_by_run,
            "flags": self.flags,
            "smaller_source_refused": self.smaller_source_refused,
            "smaller_source_accepted": self.smaller_source_accepted,
        }


def status(
    conn: psycopg.Connection[Any], dag_id: str, start: datetime, end: datetime, now: datetime
) -> list[IntervalStatus]:
    """One :class:`IntervalStatus` per 10-minute interval starting in ``[start, end)`` (``start`` on
    the 10-minute grid), oldest first; an interval that has not ended by ``now`` is no gap."""
    from psycopg.rows import class_row

    with conn.cursor(row_factory=class_row(IntervalStatus)) as cur:
        rows = cur.execute(query("interval_status"), {"dag_id": dag_id, "from": start, "to": end}).fetchall()
    return [replace(row, ended=row.interval_end <= now) for row in rows]
