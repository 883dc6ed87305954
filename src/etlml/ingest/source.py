"""The interface of an event source, and the source the settings choose.

A source gives the records of one data interval as a frame of :data:`etlml.records.RECORD`; the data
contract (``etlml.ingest.contract``) then decides which of them are events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from etlml.ingest.landing import LandingFileSource
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.settings import Settings


class EventSource(Protocol):
    """Gives the records of one data interval; ``name`` is recorded in ``run_audit.source``."""

    name: str

    def records(self, interval: Interval) -> pd.DataFrame: ...


@runtime_checkable
class StreamingSource(EventSource, Protocol):
    """A source that can also give an interval's records in chunks, and say how many there are
    before reading them: ``extract`` then holds one chunk in memory, however large the interval."""

    def record_count(self, interval: Interval) -> int: ...

    def record_chunks(self, interval: Interval) -> Iterator[pd.DataFrame]: ...


@dataclass(frozen=True)
class Reading:
    """An interval's records as a source gives them: how many, the chunks, and whether there may be
    more than one chunk (then duplicates can meet across chunks and are resolved later)."""

    total: int
    chunks: Iterable[pd.DataFrame]
    streamed: bool


def read(source: EventSource, interval: Interval) -> Reading:
    """Read the interval from ``source``, chunk by chunk where it can stream."""
    if isinstance(source, StreamingSource):
        return Reading(source.record_count(interval), source.record_chunks(interval), streamed=True)
    records = source.records(interval)
    return Reading(len(records), [records], streamed=False)


def from_settings(cfg: Settings, simulated_events: int) -> EventSource:
    """``ETLML_SOURCE``: landing files under ``ETLML_LANDING_ROOT``, or the simulator making
    ``simulated_events`` events per interval."""
    if cfg.source == "landing":
        return LandingFileSource(cfg.landing_root)
    return SimulatedSource(cfg.source_seed, simulated_events)
