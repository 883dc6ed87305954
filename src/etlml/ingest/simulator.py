"""The simulated upstream system: every event a pure function of seed, interval and event count (and
the shift of feature means, if any), and the ground truth of every event, known a few intervals later.

Ground truth. The true value of an event is

    y_true = 0.3·z1 + 0.2·z2 + 0.5·z3 + 0.3·z1·z3 + ε,   ε ~ N(0, 0.1²)

with z1 = (f1 - 10) / 2, z2 = f2 (its value before it went missing), z3 = (f3 - 100) / 10: the
linear term of ``baseline_v1`` (migration 0002), plus an interaction the baseline cannot express
and a little noise. ``baseline_v1`` is therefore close (its error is mostly the interaction term,
of standard deviation 0.3), and a model that learns the interaction (gradient boosting) beats it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etlml import FEATURES
from etlml.interval import Interval

BASELINE_COEF = {"f1": 0.3, "f2": 0.2, "f3": 0.5}
"""``baseline_v1``'s weights of the z-scored features (migration 0002)."""
POPULATION = {"f1": (10.0, 2.0), "f2": (0.0, 1.0), "f3": (100.0, 10.0)}
"""Mean and standard deviation of each simulated feature before any shift."""
INTERACTION = 0.3
"""The weight of z1·z3 in the ground truth."""
NOISE_STD = 0.1
"""The standard deviation of the ground truth's noise."""


def ground_truth(f1: np.ndarray, f2: np.ndarray, f3: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The true value of events with features ``f1``, ``f2`` (never missing: the value before it went
    missing), ``f3`` and standard normal ``noise`` (see the module's docstring)."""
    z = {f: (v - POPULATION[f][0]) / POPULATION[f][1] for f, v in zip(FEATURES, (f1, f2, f3), strict=True)}
    linear = sum(BASELINE_COEF[f] * z[f] for f in FEATURES)
    return np.asarray(linear + INTERACTION * z["f1"] * z["f3"] + NOISE_STD * noise, dtype=np.float64)


class SimulatedSource:
    """A stand-in upstream system whose events are a pure function of (seed, interval, event count).

    Rerunning or clearing an interval therefore reproduces exactly the same events:
    ids ``evt-<interval start>-<n>``, timestamps inside the interval in ascending order, and
    f1 ~ N(10, 2), f2 ~ N(0, 1) with about 5% missing, f3 ~ N(100, 10). Events are made in chunks of
    :attr:`chunk_rows`, each from its own random stream and its own slice of the interval, so a chunk
    needs no other in memory. ``shift`` adds a constant to features (``{"f3": 20.0}``: f3 ~ N(120,
    10)), drawn from the same random streams: drift for demos and tests.
    """

    name = "simulator"
    missing_share = 0.05
    chunk_rows = 250_000  # part of the definition of the events: changing it changes them

    def __init__(self, seed: int, events_per_interval: int, shift: Mapping[str, float] | None = None) -> None:
        if events_per_interval < 0:
            raise ValueError(f"events_per_interval must be >= 0, got {events_per_interval}")
        unknown = set(shift or {}) - set(FEATURES)
        if unknown:
            raise ValueError(f"shift names unknown features {sorted(unknown)}; features are {FEATURES}")
        self.seed = seed
        self.events_per_interval = events_per_interval
        self.shift = {f: float(v) for f, v in (shift or {}).items() if v}

    def _rng(self, interval: Interval, first: int, stream: str = "") -> np.random.Generator:
        bounds = f"{interval.start.isoformat()}|{interval.end.isoformat()}"
        material = f"{stream}{self.seed}|{bounds}|{self.events_per_interval}"
        if first:
            material += f"|{first}"
        digest = hashlib.sha256(material.encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:16], "big"))

    def _chunk(self, interval: Interval, first: int, last: int, *, truth: bool = False) -> pd.DataFrame:
        """Events ``first`` to ``last`` (excluded) of the interval; with ``truth``, and their true
        values (``y_true``)."""
        n, size = self.events_per_interval, last - first
        rng = self._rng(interval, first)
        span_us = int((interval.end - interval.start).total_seconds() * 1_000_000)
        low, high = (span_us * first // n, span_us * last // n) if n else (0, 1)
        offsets = np.sort(rng.integers(low, max(high, low + 1), size=size))
        drawn = {f: rng.normal(*POPULATION[f], size) for f in FEATURES}
        for feature, delta in self.shift.items():
            drawn[feature] = drawn[feature] + delta
        f1, f3 = drawn["f1"], drawn["f3"]
        f2 = np.where(rng.random(size) < self.missing_share, np.nan, drawn["f2"])
        numbers = pc.utf8_lpad(pc.cast(pa.array(np.arange(first, last)), pa.string()), 7, "0")
        ids = pc.binary_join_element_wise(f"evt-{interval.start:%Y%m%dT%H%M%S}-", numbers, "")
        start = pd.Timestamp(interval.start).as_unit("us")
        events = pd.DataFrame(
            {
                "event_id": pd.Series(ids.to_pandas(), dtype="string"),
                "ts_utc": start + pd.to_timedelta(offsets, unit="us"),
                "f1": f1,
                "f2": f2,
                "f3": f3,
            }
        )
        if truth:
            noise = self._rng(interval, first, "truth|").standard_normal(size)
            events["y_true"] = ground_truth(f1, drawn["f2"], f3, noise)
        return events

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


class SimulatedLabels:
    """The ground truth of the :class:`SimulatedSource`'s events, ``delay`` intervals late: the labels
    given for interval J are those of the events the source makes for the interval ``delay``
    intervals before J (of J's length), each observed at its event's ``ts_utc`` plus ``delay``
    intervals, so inside J. A pure function of the source (seed, events per interval, shift) and J,
    like the events: the events are made again, never read back from anywhere."""

    name = "simulator"

    def __init__(self, source: SimulatedSource, delay: int) -> None:
        if delay < 1:
            raise ValueError(f"the label delay must be at least 1 interval, got {delay}")
        self.source = source
        self.delay = delay

    def labelled(self, interval: Interval) -> Interval:
        """The interval whose events ``interval`` gives the labels of."""
        return interval.shifted(-(interval.end - interval.start) * self.delay)

    def labels(self, interval: Interval) -> pd.DataFrame:
        """``event_id``, ``y_true``, ``observed_at`` (:data:`etlml.records.LABEL`) of the labels
        given in ``interval``, in event order."""
        labelled = self.labelled(interval)
        source = self.source
        n, step = source.events_per_interval, source.chunk_rows
        chunks = [
            source._chunk(labelled, first, min(n, first + step), truth=True) for first in range(0, n, step)
        ] or [source._chunk(labelled, 0, 0, truth=True)]
        events = pd.concat(chunks, ignore_index=True)
        later = pd.Timedelta(interval.end - interval.start) * self.delay
        return pd.DataFrame(
            {
                "event_id": events["event_id"],
                "y_true": events["y_true"].to_numpy(dtype=np.float64),
                "observed_at": events["ts_utc"] + later,
            }
        )

    def records(self, interval: Interval) -> pd.DataFrame:
        """:meth:`labels` with synthetic provenance: ``source_file`` ``simulator``, rows from 1."""
        labels = self.labels(interval)
        return labels.assign(
            source_file="simulator", row_number=np.arange(1, len(labels) + 1, dtype=np.int64)
        )
