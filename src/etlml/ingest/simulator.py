"""The simulated upstream system: every event a pure function of seed, interval and event count."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etlml.interval import Interval


class SimulatedSource:
    """A stand-in upstream system whose events are a pure function of (seed, interval, event count).

    Rerunning or clearing an interval therefore reproduces exactly the same events:
    ids ``evt-<interval start>-<n>``, timestamps inside the interval in ascending order, and
    f1 ~ N(10, 2), f2 ~ N(0, 1) with about 5% missing, f3 ~ N(100, 10). Events are made in chunks of
    :attr:`chunk_rows`, each from its own random stream and its own slice of the interval, so a chunk
    needs no other in memory.
    """

    name = "simulator"
    missing_share = 0.05
    chunk_rows = 250_000  # part of the definition of the events: changing it changes them

    def __init__(self, seed: int, events_per_interval: int) -> None:
        if events_per_interval < 0:
            raise ValueError(f"events_per_interval must be >= 0, got {events_per_interval}")
        self.seed = seed
        self.events_per_interval = events_per_interval

    def _rng(self, interval: Interval, first: int) -> np.random.Generator:
        bounds = f"{interval.start.isoformat()}|{interval.end.isoformat()}"
        material = f"{self.seed}|{bounds}|{self.events_per_interval}"
        if first:
            material += f"|{first}"
        digest = hashlib.sha256(material.encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:16], "big"))

    def _chunk(self, interval: Interval, first: int, last: int) -> pd.DataFrame:
        n, size = self.events_per_interval, last - first
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
        for first in range(0, self.events_per_interval, self.chunk_rows):
            yield self._chunk(interval, first, min(self.events_per_interval, first + self.chunk_rows))

    def events(self, interval: Interval) -> pd.DataFrame:
        """All events of the interval in one frame (for tests and small intervals)."""
        chunks = list(self._chunks(interval)) or [self._chunk(interval, 0, 0)]
        return pd.concat(chunks, ignore_index=True)

    def record_count(self, interval: Interval) -> int:
        return self.events_per_interval

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
