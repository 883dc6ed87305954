"""Vectorized scoring with a checked model version (pure: frames in, predictions out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from etlml import FEATURES
from etlml.errors import ModelError
from etlml.features.stats import Stats
from etlml.features.transform import normalize
from etlml.models.spec import VersionSpec

Floats = np.ndarray[Any, np.dtype[np.float64]]


class Scorer(Protocol):
    """A loaded model version that scores frames of processed events."""

    @property
    def version(self) -> str: ...

    @property
    def stats(self) -> Stats: ...

    def predict(self, frame: pd.DataFrame, *, use_stored_z: bool) -> Floats: ...


@dataclass(frozen=True)
class LinearModel:
    """``y = intercept + sum(coef[f] * z[f])`` over z-scored features."""

    version: str
    coef: Mapping[str, float]
    intercept: float
    stats: Stats

    @classmethod
    def from_spec(cls, spec: VersionSpec) -> LinearModel:
        return cls(version=spec.version, coef=spec.coef, intercept=spec.intercept, stats=spec.stats)

    def predict(self, frame: pd.DataFrame, *, use_stored_z: bool) -> Floats:
        """Score ``frame``: its ``<f>_z`` columns if ``use_stored_z``, else z-scores of its raw features
        under this version's statistics."""
        normalized = frame if use_stored_z else normalize(frame[list(FEATURES)], self.stats)
        return score(normalized, self)


@dataclass(frozen=True)
class SklearnModel:
    """A fitted scikit-learn estimator over the raw features (columns f1, f2, f3 in that order),
    missing values imputed with this version's means."""

    version: str
    estimator: Any
    stats: Stats

    def predict(self, frame: pd.DataFrame, *, use_stored_z: bool) -> Floats:
        features = np.column_stack(
            [frame[f].fillna(self.stats[f].mean).to_numpy(dtype=np.float64) for f in FEATURES]
        )
        y = np.asarray(self.estimator.predict(features), dtype=np.float64).reshape(-1)
        if len(y) != len(frame) or not np.isfinite(y).all():
            raise ModelError(f"model {self.version!r} returned {len(y)} predictions, or non-finite ones")
        return y


def score(normalized: pd.DataFrame, model: LinearModel) -> Floats:
    """Vectorized ``y_hat`` for a frame holding the ``<feature>_z`` columns."""
    y = np.full(len(normalized), model.intercept, dtype=np.float64)
    for feature in FEATURES:
        y += model.coef[feature] * normalized[f"{feature}_z"].to_numpy(dtype=np.float64)
    return y
