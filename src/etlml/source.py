"""Event sources: where a run's raw events come from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etlml.interval import Interval

RAW_COLUMNS = ("event_id", "ts_utc", "f1", "f2", "f3")
PROVENANCE = ("source_file", "row_number")
RECORD_COLUMNS = (*PROVENANCE, "raw", *RAW_COLUMNS, "problem", "problem_detail", "extra_fields")
"""What a source reads, one row per record, before the contract (``etlml.contract``) checks it.

``source_file`` and ``row_number`` say where the record came from (unique per record); ``raw`` is its
bytes as found (or missing: the contract then renders the fields as JSON); the :data:`RAW_COLUMNS`
are the values as text, or already typed (the simulator's); ``problem`` and ``problem_detail`` are a
reason code and message when the source itself could not read the record; ``extra_fields`` is a JSON
list of the record's fields the contract does not know. Only the provenance and
:data:`RAW_COLUMNS` are required.
"""


class EventSource(Protocol):
    """Gives the records of one data interval as a frame with :data:`RECORD_COLUMNS`."""

    def records(self, interval: Interval) -> pd.DataFrame: ...


class StreamingSource(EventSource, Protocol):
    """A source that can also give an interval's records in chunks, and say how many there are
    before reading them: ``extract`` then holds one chunk in memory, however large the interval."""

    def record_count(self, interval: Interval) -> int: ...

    def record_chunks(self, interval: Interval) -> Iterator[pd.DataFrame]: ...


class SimulatedSource:
    """A stand-in upstream system whose events are a pure function of (seed, interval, batch size).

    Rerunning or clearing an interval therefore reproduces exactly the same events:
    ids ``evt-<interval start>-<n>``, timestamps inside the interval in ascending order, and
    f1 ~ N(10, 2), f2 ~ N(0, 1) with about 5% missing, f3 ~ N(100, 10). Events are made in chunks of
    :attr:`chunk_rows`, each from its own random stream and its own slice of the interval, so a chunk
    needs no other in memory.
    """

    name = "simulator"
    missing_share = 0.05
    chunk_rows = 250_000  # part of the definition of the events: changing it changes them

    def __init__(self, seed: int, batch_size: int) -> None:
        if batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {batch_size}")
        self.seed = seed
        self.batch_size = batch_size

    def _rng(self, interval: Interval, first: int) -> np.random.Generator:
        material = f"{self.seed}|{interval.start.isoformat()}|{interval.end.isoformat()}|{self.batch_size}"
        if first:
            material += f"|{first}"
        digest = hashlib.sha256(material.encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:16], "big"))

    def _chunk(self, interval: Interval, first: int, last: int) -> pd.DataFrame:
        n, size = self.batch_size, last - first
        rng = self._rng(interval, first)
        span_us = int((interval.end - interval.start).total_seconds() * 1_000_000)
        low, high = (span_us * first // n, span_us * last // n) if n else (0, 1)
        offsets = np.sort(rng.integers(low, max(high, low + 1), size=size))
        f1 = rng.normal(10.0, 2.0, size)
        f2 = rng.normal(0.0, 1.0, size)
        f3 = rng.normal(100.0, 10.0, size)
        f2[rng.random(size) < self.missing_share] = np.nan
        numbers = pc.utf8_lpad(pc.cast(pa.array(np.arange(first, last)), pa.string()), 7, "0")
        ids = pc.binary_join_element_wise(f"evt-{interval.start:%Y%m%dT%H%M%S}-", numbers, "")
        start = pd.Timestamp(interval.start).as_unit("us")
        return pd.DataFrame(
            {
                "event_id": pd.Series(ids.to_pandas(), dtype="string"),
                "ts_utc": start + pd.to_timedelta(offsets, unit="us"),
                "f1": f1,
                "f2": f2,
                "f3": f3,
            }
        )

    def _chunks(self, interval: Interval) -> Iterator[pd.DataFrame]:
        for first in range(0, self.batch_size, self.chunk_rows):
            yield self._chunk(interval, first, min(self.batch_size, first + self.chunk_rows))

    def events(self, interval: Interval) -> pd.DataFrame:
        """All events of the interval in one frame (for tests and small batches)."""
        chunks = list(self._chunks(interval)) or [self._chunk(interval, 0, 0)]
        return pd.concat(chunks, ignore_index=True)

    def record_count(self, interval: Interval) -> int:
        return self.batch_size

    def record_chunks(self, interval: Interval) -> Iterator[pd.DataFrame]:
        """:meth:`events` chunk by chunk, with synthetic provenance: ``source_file`` ``simulator``,
        rows numbered from 1."""
        first = 0
        for events in self._chunks(interval):
            yield events.assign(
                source_file="simulator",
                row_number=np.arange(first + 1, first + len(events) + 1, dtype=np.int64),
            )
            first += len(events)

    def records(self, interval: Interval) -> pd.DataFrame:
        """:meth:`record_chunks` in one frame."""
        chunks = list(self.record_chunks(interval))
        if not chunks:
            return self.events(interval).assign(source_file="simulator", row_number=np.empty(0, np.int64))
        return pd.concat(chunks, ignore_index=True)
