"""The interface of an event source, and the source the settings choose.

A source gives the records of one data interval as a frame of :data:`etlml.records.RECORD`; the data
contract (``etlml.ingest.contract``) then decides which of them are events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from etlml.ingest import formats
from etlml.ingest.landing import LABELS_FOLDER, LandingFileSource
from etlml.ingest.ledger import FileEntry
from etlml.ingest.simulator import SimulatedLabels, SimulatedSource
from etlml.ingest.stream import RedisStreamSource
from etlml.interval import Interval
from etlml.settings import Settings


class EventSource(Protocol):
    """Gives the records of one data interval; ``name`` is recorded in ``run_audit.source``."""

    name: str

    def records(self, interval: Interval) -> pd.DataFrame: ...


@runtime_checkable
class ChunkedSource(EventSource, Protocol):
    """A source that can also give an interval's records in chunks: ``extract`` then holds one
    chunk in memory, however large the interval. How many records there are is known once they are
    read (a log read once, as the Redis stream)."""

    def record_chunks(self, interval: Interval) -> Iterator[pd.DataFrame]: ...


@runtime_checkable
class StreamingSource(ChunkedSource, Protocol):
    """A chunked source that can also say how many records there are before reading them. The count
    decides the number of shards only, so it may be an upper bound (the landing source counts lines,
    without reading records)."""

    def record_count(self, interval: Interval) -> int: ...


@runtime_checkable
class PartitionedSource(EventSource, Protocol):
    """A source whose intervals are partitions that can be absent (a landing folder moved away).

    ``partition_exists`` raises :class:`~etlml.errors.SettingsError` when the source itself cannot be
    found or listed (a configuration error); it returns ``False`` for an interval whose partition is
    not there. Such an interval has zero records, and the warehouse keeps what it holds for it:
    absence is not evidence that stored rows are gone."""

    def partition_exists(self, interval: Interval) -> bool: ...


@runtime_checkable
class PositionedSource(EventSource, Protocol):
    """A log whose intervals are ranges of positions (a Redis stream): ``first_entry_id`` is the
    position of the interval's first record (``None`` if it has none), recorded in ``run_audit`` so
    that a rerun can tell whether the range it reads is still the one the first run read."""

    def first_entry_id(self, interval: Interval) -> str | None: ...


@runtime_checkable
class ListedSource(EventSource, Protocol):
    """A source whose interval is a set of files: ``ledger_files`` names each with its size and what
    tells its content apart (a checksum or ETag), so that a run records what it read, a rerun can
    tell a file gone from one added (:mod:`etlml.ingest.ledger`), and a file that lands or changes
    later can be found (``etlml runs changed``)."""

    def ledger_files(
        self, interval: Interval, known: dict[str, FileEntry] | None = None
    ) -> dict[str, FileEntry]: ...


@dataclass(frozen=True)
class Reading:
    """An interval's records as a source gives them: how many (at most; ``None``: known once the
    chunks are read), the chunks, whether there may be more than one chunk (then duplicates can meet
    across chunks and are resolved later), and whether the source found the interval at all
    (``found``: ``False`` for a missing partition). ``distinct_ids``: the source gives each event id
    once per interval by construction (the simulator), so there are no duplicates to resolve."""

    total: int | None
    chunks: Iterable[pd.DataFrame]
    streamed: bool
    found: bool = True
    files: dict[str, FileEntry] | None = None
    distinct_ids: bool = False


def read(source: EventSource, interval: Interval) -> Reading:
    """Read the interval from ``source``, chunk by chunk where it can stream. A partitioned source
    is asked first whether the interval's partition exists; if it does not, nothing is read."""
    if isinstance(source, PartitionedSource) and not source.partition_exists(interval):
        return Reading(0, [], streamed=False, found=False)
    # listed before anything is read: a file that lands meanwhile is read unlisted, and so shows as
    # changed later (a rerun is harmless), never listed unread
    files = source.ledger_files(interval) if isinstance(source, ListedSource) else None
    if isinstance(source, StreamingSource):
        return Reading(
            source.record_count(interval),
            source.record_chunks(interval),
            streamed=True,
            files=files,
            distinct_ids=isinstance(source, SimulatedSource),
        )
    if isinstance(source, ChunkedSource):
        return Reading(None, source.record_chunks(interval), streamed=True, files=files)
    records = source.records(interval)
    return Reading(len(records), [records], streamed=False, files=files)


def from_settings(cfg: Settings, simulated_events: int) -> EventSource:
    """``ETLML_SOURCE``: landing files under ``ETLML_LANDING_ROOT`` (none larger than
    ``ETLML_MAX_FILE_BYTES`` read), the Redis stream ``ETLML_STREAM_KEY`` of the Airflow connection
    ``ETLML_STREAM_CONN_ID``, or the simulator making ``simulated_events`` events per interval
    (their feature means shifted by ``ETLML_SIMULATOR_SHIFT``)."""
    if cfg.source == "landing":
        return LandingFileSource(cfg.landing_root, max_file_bytes=cfg.max_file_bytes)
    if cfg.source == "redis_stream":
        return RedisStreamSource.from_connection(cfg.stream_conn_id, cfg.stream_key, cfg.stream_grace)
    return SimulatedSource(cfg.source_seed, simulated_events, cfg.simulator_shift)


def labels_from_settings(cfg: Settings, simulated_events: int) -> EventSource:
    """``ETLML_LABEL_SOURCE``: label files under ``<ETLML_LANDING_ROOT>/labels/YYYY-MM-DD/HHMM/``, or
    the simulator's ground truth of the events it made ``ETLML_SIMULATOR_LABEL_DELAY`` intervals
    earlier (``simulated_events`` per interval, shifted as the events were: the labels then match
    the stored events exactly)."""
    if cfg.label_source == "landing":
        return LandingFileSource(
            cfg.landing_root, max_file_bytes=cfg.max_file_bytes, fields=formats.LABELS, prefix=LABELS_FOLDER
        )
    events = SimulatedSource(cfg.source_seed, simulated_events, cfg.simulator_shift)
    return SimulatedLabels(events, cfg.simulator_label_delay)
