"""Model versions from the registry tables, and vectorized scoring."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import psycopg

from etlml import FEATURES
from etlml.db import query

Floats = np.ndarray[Any, np.dtype[np.float64]]


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


def parse_stats(version: str, feature_stats: Mapping[str, Any]) -> dict[str, FeatureStats]:
    """Validate the ``feature_stats`` JSON of a version: a finite mean and positive std per feature."""
    try:
        stats = {f: FeatureStats(float(s["mean"]), float(s["std"])) for f, s in feature_stats.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model {version!r} has malformed statistics: {exc!r}") from exc
    missing = [f for f in FEATURES if f not in stats]
    if missing:
        raise ModelError(f"model {version!r} lacks statistics for {missing}")
    return stats


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
    def from_record(
        cls, version: str, kind: str, params: Mapping[str, Any], feature_stats: Mapping[str, Any]
    ) -> LinearModel:
        """Validate a ``model_versions`` row and build the model it describes."""
        if kind != "linear":
            raise ModelError(f"model {version!r} has kind {kind!r}, not 'linear'")
        try:
            coef = {f: float(params["coef"][f]) for f in FEATURES}
            intercept = float(params.get("intercept", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model {version!r} has malformed params: {exc!r}") from exc
        if not all(math.isfinite(v) for v in [*coef.values(), intercept]):
            raise ModelError(f"model {version!r} has a non-finite coefficient or intercept")
        return cls(version=version, coef=coef, intercept=intercept, stats=parse_stats(version, feature_stats))

    def predict(self, frame: pd.DataFrame, *, use_stored_z: bool) -> Floats:
        """Score ``frame``: its ``<f>_z`` columns if ``use_stored_z``, else z-scores of its raw features
        under this version's statistics."""
        from etlml.transform import normalize

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


def aliases(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Alias -> version, read once: ``champion`` always, ``challenger`` when one is shadowing."""
    with conn.cursor() as cur:
        cur.execute(query("model_aliases"))
        return {str(alias): str(version) for alias, version in cur.fetchall()}


def champion(conn: psycopg.Connection[Any]) -> str:
    """The version that serves now (alias ``champion``)."""
    version = aliases(conn).get("champion")
    if version is None:
        raise ModelError("no model version holds the 'champion' alias; run `etlml db migrate` first")
    return version


def load(conn: psycopg.Connection[Any], version: str) -> Scorer:
    """Read one immutable version from ``model_versions``; sklearn artifacts are verified on load."""
    with conn.cursor() as cur:
        cur.execute(query("model_version"), {"model_version": version})
        row = cur.fetchone()
    if row is None:
        raise ModelError(
            f"model version {version!r} is not registered in model_versions (see `etlml models list`)"
        )
    kind, params, feature_stats, artifact_uri, artifact_sha256 = row
    if kind == "sklearn":
        from etlml import artifacts

        estimator = artifacts.load_estimator(str(artifact_uri), str(artifact_sha256))
        return SklearnModel(version, estimator, parse_stats(version, feature_stats))
    return LinearModel.from_record(version, str(kind), params, feature_stats)


def score(normalized: pd.DataFrame, model: LinearModel) -> Floats:
    """Vectorized ``y_hat`` for a frame holding the ``<feature>_z`` columns."""
    y = np.full(len(normalized), model.intercept, dtype=np.float64)
    for feature in FEATURES:
        y += model.coef[feature] * normalized[f"{feature}_z"].to_numpy(dtype=np.float64)
    return y
