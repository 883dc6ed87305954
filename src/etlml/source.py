"""Event sources: where a run's raw events come from."""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np
import pandas as pd

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


class SimulatedSource:
    """A stand-in upstream system whose events are a pure function of (seed, interval, batch size).

    Rerunning or clearing an interval therefore reproduces exactly the same events:
    ids ``evt-<interval start>-<n>``, timestamps inside the interval, and
    f1 ~ N(10, 2), f2 ~ N(0, 1) with about 5% missing, f3 ~ N(100, 10).
    """

    name = "simulator"
    missing_share = 0.05

    def __init__(self, seed: int, batch_size: int) -> None:
        if batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {batch_size}")
        self.seed = seed
        self.batch_size = batch_size

    def _rng(self, interval: Interval) -> np.random.Generator:
        material = f"{self.seed}|{interval.start.isoformat()}|{interval.end.isoformat()}|{self.batch_size}"
        digest = hashlib.sha256(material.encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:16], "big"))

    def events(self, interval: Interval) -> pd.DataFrame:
        n = self.batch_size
        rng = self._rng(interval)
        span_us = int((interval.end - interval.start).total_seconds() * 1_000_000)
        offsets = np.sort(rng.integers(0, span_us, size=n))
        f1 = rng.normal(10.0, 2.0, n)
        f2 = rng.normal(0.0, 1.0, n)
        f3 = rng.normal(100.0, 10.0, n)
        f2[rng.random(n) < self.missing_share] = np.nan
        prefix = f"evt-{interval.start:%Y%m%dT%H%M%S}-"
        start = pd.Timestamp(interval.start).as_unit("us")
        return pd.DataFrame(
            {
                "event_id": pd.Series([f"{prefix}{i:07d}" for i in range(n)], dtype="string"),
                "ts_utc": start + pd.to_timedelta(offsets, unit="us"),
                "f1": f1,
                "f2": f2,
                "f3": f3,
            }
        )

    def records(self, interval: Interval) -> pd.DataFrame:
        """:meth:`events` with synthetic provenance: ``source_file`` ``simulator``, rows numbered from 1."""
        events = self.events(interval)
        return events.assign(
            source_file="simulator", row_number=np.arange(1, len(events) + 1, dtype=np.int64)
        )
