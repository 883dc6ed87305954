"""Pure transforms: frames and parameters in, new frames out; no I/O, no clock."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import chain

import numpy as np
import pandas as pd

from etlml import FEATURES
from etlml.features.stats import FeatureStats, Stats


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """Coerce types: string ids, UTC microsecond timestamps, float features (non-finite -> missing)."""
    out = pd.DataFrame(
        {
            "event_id": raw["event_id"].astype("string"),
            "ts_utc": pd.to_datetime(raw["ts_utc"], utc=True, format="ISO8601").dt.as_unit("us"),
        }
    )
    for feature in FEATURES:
        values = pd.to_numeric(raw[feature], errors="coerce").astype("float64")
        out[feature] = values.where(np.isfinite(values))
    return out


def batch_stats(frames: pd.DataFrame | Callable[[], Iterable[pd.DataFrame]]) -> dict[str, FeatureStats]:
    """Mean and sample std of each feature over a run's events (its "batch"): the case study's
    normalization.

    Kept only to reproduce the case study; a row's z-score then depends on its batch mates.
    A feature with no spread (or fewer than two values) gets std 1, so its z-scores are 0.
    ``frames`` is a frame or a function giving the batch in parts (called twice: mean, then
    spread). Sums are exact (``math.fsum``), so the statistics do not depend on how the batch is
    split or ordered: a sharded run normalizes exactly as an unsharded one.
    """

    def values(feature: str) -> Iterable[np.ndarray]:
        parts = [frames] if isinstance(frames, pd.DataFrame) else frames()
        for part in parts:
            column = part[feature].to_numpy(dtype=np.float64)
            yield column[~np.isnan(column)]

    stats = {}
    for feature in FEATURES:
        n = sum(len(v) for v in values(feature))
        mean = math.fsum(chain.from_iterable(v.tolist() for v in values(feature))) / n if n else 0.0
        squares = math.fsum(chain.from_iterable(((v - mean) ** 2).tolist() for v in values(feature)))
        std = math.sqrt(squares / (n - 1)) if n > 1 else 0.0
        stats[feature] = FeatureStats(mean, std if math.isfinite(std) and std > 0 else 1.0)
    return stats


def normalize(frame: pd.DataFrame, stats: Stats) -> pd.DataFrame:
    """Add ``<f>_imputed`` (value was missing) and ``<f>_z`` (z-score after mean imputation)."""
    out = frame.copy()
    for feature in FEATURES:
        s = stats[feature]
        missing = frame[feature].isna()
        filled = frame[feature].fillna(s.mean).to_numpy(dtype=np.float64)
        out[f"{feature}_z"] = (filled - s.mean) / s.std
        out[f"{feature}_imputed"] = missing.to_numpy(dtype=bool)
    return out


def key_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows in event-id order (a frame already in that order comes back as it is).

    processed_data's and predictions' keys lead with the interval, then the event id: rows loaded in
    this order fill an interval's range of each key from left to right, and the redelivery check reads
    them back in the same order. Random ids (UUIDs, digests) would otherwise land all over the range.
    Python orders strings by code point, as PostgreSQL's "C" collation orders their UTF-8 bytes.
    """
    if frame["event_id"].is_monotonic_increasing:
        return frame
    return frame.sort_values("event_id", kind="stable", ignore_index=True)
