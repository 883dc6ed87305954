"""Fit a scikit-learn pipeline on labelled processed events and describe it (pure: frames in, results out).

The estimator sees the raw features ``f1, f2, f3`` with missing values imputed by the training
window's means, exactly as :class:`etlml.models.scoring.SklearnModel` feeds it when it scores. The
validation score comes from a time-ordered holdout: fitted on the earliest 80% of the events by
``ts_utc``, scored on the latest 20%. The registered estimator is then refitted on the whole window,
so the most recent events, the closest to what it will score, are not left out; the holdout score
estimates how this procedure does on events later than those it was fitted on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from etlml import FEATURES
from etlml.errors import ModelError
from etlml.features.profile import reference_profile
from etlml.features.stats import FeatureStats
from etlml.models import estimation
from etlml.models.scoring import SklearnModel

Estimator = Literal["ridge", "hist_gradient_boosting"]
ESTIMATORS: tuple[Estimator, ...] = ("ridge", "hist_gradient_boosting")
HOLDOUT_SHARE = 0.2
HOLDOUT_RULE = "latest 20% of the labelled events by ts_utc (ties by event_id); refitted on all of them"
MIN_LABELLED = 100
RANDOM_STATE = 0
Floats = np.ndarray[Any, np.dtype[np.float64]]


class TrainingError(ModelError):
    """The labelled events cannot train a version (too few, no spread, unknown estimator)."""


@dataclass(frozen=True)
class Trained:
    """A fitted estimator with what the registry stores beside it: its error estimator is fitted on
    the holdout's errors of the model fitted without the holdout (``None`` when the holdout has fewer
    than :data:`etlml.models.estimation.MIN_EVENTS` events)."""

    estimator: Any
    stats: dict[str, FeatureStats]
    validation_metrics: dict[str, Any]
    reference_profile: dict[str, Any]
    error_estimator: estimation.FittedEstimator | None = None


def make_estimator(name: str) -> Any:
    """An unfitted pipeline: ``ridge`` (standardized, alpha 1) or ``hist_gradient_boosting``."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "ridge":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    if name == "hist_gradient_boosting":
        return make_pipeline(HistGradientBoostingRegressor(random_state=RANDOM_STATE))
    raise TrainingError(f"unknown estimator {name!r}: choose one of {', '.join(ESTIMATORS)}")


def window_stats(frame: pd.DataFrame) -> dict[str, FeatureStats]:
    """Mean and sample std of each raw feature over the non-missing values of ``frame``."""
    stats = {}
    for feature in FEATURES:
        values = frame[feature].to_numpy(dtype=np.float64)
        present = values[np.isfinite(values)]
        std = float(np.std(present, ddof=1)) if present.size > 1 else math.nan
        if not (math.isfinite(std) and std > 0):
            raise TrainingError(
                f"{feature} has {present.size} values and no spread among the labelled events of the "
                "window; choose a wider window"
            )
        stats[feature] = FeatureStats(float(present.mean()), std)
    return stats


def _matrix(frame: pd.DataFrame, stats: dict[str, FeatureStats]) -> Floats:
    return np.column_stack([frame[f].fillna(stats[f].mean).to_numpy(dtype=np.float64) for f in FEATURES])


def _metrics(y_true: Floats, y_hat: Floats) -> dict[str, float]:
    err = y_hat - y_true
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(err.mean()),
    }


def train(frame: pd.DataFrame, estimator: str, version: str) -> Trained:
    """Fit ``estimator`` on ``frame`` (columns event_id, ts_utc, f1, f2, f3, y_true), validate it on
    the time-ordered holdout, refit it on every row, and profile its inputs and scores."""
    make_estimator(estimator)  # an unknown name fails before anything is fitted
    if len(frame) < MIN_LABELLED:
        raise TrainingError(
            f"only {len(frame)} labelled processed events in the window, at least {MIN_LABELLED} are "
            "needed: widen --from/--to, or wait until more labels have arrived (table labels)"
        )
    ordered = frame.sort_values(["ts_utc", "event_id"], kind="stable").reset_index(drop=True)
    stats = window_stats(ordered)
    x, y = _matrix(ordered, stats), ordered["y_true"].to_numpy(dtype=np.float64)
    cut = len(ordered) - max(1, math.ceil(len(ordered) * HOLDOUT_SHARE))
    held_out = make_estimator(estimator).fit(x[:cut], y[:cut])
    holdout_scores = np.asarray(held_out.predict(x[cut:]), dtype=np.float64)
    validation = {
        "n": len(ordered) - cut,
        "n_fit": cut,
        **_metrics(y[cut:], holdout_scores),
        "holdout": HOLDOUT_RULE,
        "estimator": estimator,
    }
    raw = np.column_stack([ordered[f].to_numpy(dtype=np.float64)[cut:] for f in FEATURES])
    errors = (
        estimation.fit(raw, holdout_scores, y[cut:]) if len(ordered) - cut >= estimation.MIN_EVENTS else None
    )
    fitted = make_estimator(estimator).fit(x, y)
    scores = SklearnModel(version, fitted, stats).predict(ordered, use_stored_z=False)
    profile = reference_profile(
        {
            **{f: ordered[f].to_numpy(dtype=np.float64) for f in FEATURES},
            "score": scores,
        }
    )
    return Trained(fitted, stats, validation, profile, errors)
