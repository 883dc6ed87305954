"""Normalization statistics: per feature a mean (also the imputation value) and a standard deviation.

A model version stores them (its ``feature_stats``), and a run in ``batch`` normalization computes
them over its own events (:func:`etlml.features.transform.batch_stats`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from etlml import FEATURES
from etlml.errors import ModelError


@dataclass(frozen=True)
class FeatureStats:
    """Mean (imputation value) and standard deviation of one feature."""

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean) or not math.isfinite(self.std) or self.std <= 0:
            raise ModelError(f"feature statistics need a finite mean and a positive std, got {self}")


Stats = Mapping[str, FeatureStats]


def parse_stats(version: str, feature_stats: Mapping[str, Any]) -> dict[str, FeatureStats]:
    """Validate stored statistics (``{"f1": {"mean": .., "std": ..}, ...}``) of ``version``: a finite
    mean and a positive std for every feature."""
    try:
        stats = {f: FeatureStats(float(s["mean"]), float(s["std"])) for f, s in feature_stats.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model {version!r} has malformed statistics: {exc!r}") from exc
    missing = [f for f in FEATURES if f not in stats]
    if missing:
        raise ModelError(f"model {version!r} lacks statistics for {missing}")
    return stats


def stats_json(stats: Stats) -> dict[str, dict[str, float]]:
    """The statistics of every feature as JSON, the form :func:`parse_stats` reads."""
    return {f: {"mean": stats[f].mean, "std": stats[f].std} for f in FEATURES}
