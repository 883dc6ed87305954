"""Model versions from the registry tables, and vectorized scoring."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from etlml import FEATURES
from etlml.db import query


class ModelError(ValueError):
    """A model version is unknown or its stored record is not usable."""


@dataclass(frozen=True)
class FeatureStats:
    """Mean (imputation value) and standard deviation of one feature."""

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean) or not math.isfinite(self.std) or self.std <= 0:
            raise ModelError(f"feature statistics need a finite mean and a positive std, got {self}")


Stats = Mapping[str, FeatureStats]


@dataclass(frozen=True)
class LinearModel:
    """``y = intercept + sum(coef[f] * z[f])`` over z-scored features."""

    version: str
    coef: Mapping[str, float]
    intercept: float
    stats: Stats

    @classmethod
    def from_record(
        cls, version: str, kind: str, params: Mapping[str, Any], feature_stats: Mapping[str, Any]
    ) -> LinearModel:
        """Validate a ``model_versions`` row and build the model it describes."""
        if kind != "linear":
            raise ModelError(f"model {version!r} has kind {kind!r}; this release scores only 'linear'")
        try:
            coef = {f: float(params["coef"][f]) for f in FEATURES}
            stats = {f: FeatureStats(float(s["mean"]), float(s["std"])) for f, s in feature_stats.items()}
            intercept = float(params.get("intercept", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model {version!r} has malformed params or statistics: {exc!r}") from exc
        missing = [f for f in FEATURES if f not in stats]
        if missing:
            raise ModelError(f"model {version!r} lacks statistics for {missing}")
        if not all(math.isfinite(v) for v in [*coef.values(), intercept]):
            raise ModelError(f"model {version!r} has a non-finite coefficient or intercept")
        return cls(version=version, coef=coef, intercept=intercept, stats=stats)


def champion(conn: psycopg.Connection[Any]) -> str:
    """The version that serves now (alias ``champion``)."""
    with conn.cursor() as cur:
        cur.execute(query("champion_version"))
        row = cur.fetchone()
    if row is None:
        raise ModelError("no model version holds the 'champion' alias; run `etlml db migrate` first")
    return str(row[0])


def load(conn: psycopg.Connection[Any], version: str) -> LinearModel:
    """Read one immutable version from ``model_versions``."""
    with conn.cursor() as cur:
        cur.execute(query("model_version"), {"model_version": version})
        row = cur.fetchone()
    if row is None:
        raise ModelError(f"model version {version!r} is not registered in model_versions")
    kind, params, feature_stats = row
    return LinearModel.from_record(version, str(kind), params, feature_stats)


def score(normalized: pd.DataFrame, model: LinearModel) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Vectorized ``y_hat`` for a frame holding the ``<feature>_z`` columns."""
    y = np.full(len(normalized), model.intercept, dtype=np.float64)
    for feature in FEATURES:
        y += model.coef[feature] * normalized[f"{feature}_z"].to_numpy(dtype=np.float64)
    return y
