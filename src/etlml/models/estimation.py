"""Estimated performance before the labels (direct loss estimation), pure: arrays in, figures out.

A version's *error estimator* is a small regressor of the absolute error ``|y_hat - y_true|`` from
the raw features and the version's prediction (``f1, f2, f3, y_hat``; a missing feature stays NaN,
which the gradient-boosted trees route on their own), fitted on labelled events the version did not
train on. The estimated MAE of an interval is the mean of its predictions over the interval's events,
before any of them has a label; its band is ``BAND_SIGMAS`` standard errors of a mean of that many
absolute errors, their spread as measured where the estimator was fitted.

It assumes that the relation between the inputs and the truth holds: it sees the error grow when the
inputs move to where the version is known to err more (a covariate shift), not when the truth itself
changes for the same inputs (a concept shift), and it extrapolates flatly beyond the inputs it was
fitted on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from etlml.errors import ModelError

Floats = np.ndarray[Any, np.dtype[np.float64]]

MIN_EVENTS = 100
"""Fewer labelled events than this fit no estimator."""
BAND_SIGMAS = 3.0
"""The band is the estimate plus or minus this many standard errors (as NannyML draws its bands)."""
MAX_ESTIMATED_EVENTS = 200_000
"""An interval with more events is estimated on this many of them, chosen by event id: the mean of
200,000 predicted errors moves by a fraction of a percent at most, and the cost stays bounded."""
ESTIMATOR = (
    "hist_gradient_boosting(max_iter=20, max_depth=4, learning_rate=0.3) of |error| on f1, f2, f3, y_hat"
)
RANDOM_STATE = 0


class EstimationError(ModelError):
    """The labelled events cannot fit an error estimator (too few, not finite)."""


@dataclass(frozen=True)
class FittedEstimator:
    """An error estimator with the figures of the events it was fitted on."""

    estimator: Any
    n: int
    reference_mae: float
    reference_abs_error_std: float


@dataclass(frozen=True)
class Estimate:
    """The estimated MAE of ``n`` events, with its band."""

    n: int
    mae: float
    low: float
    high: float


def inputs(features: Floats, y_hat: Floats) -> Floats:
    """The estimator's input matrix: the raw features (n x 3, NaN where missing) and the prediction."""
    return np.column_stack([np.asarray(features, dtype=np.float64), np.asarray(y_hat, dtype=np.float64)])


def fit(features: Floats, y_hat: Floats, y_true: Floats) -> FittedEstimator:
    """Fit the error estimator of a version on labelled events it did not train on: ``features``
    (n x 3: f1, f2, f3, NaN where missing), the version's predictions and the labels."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    y_hat, y_true = np.asarray(y_hat, dtype=np.float64), np.asarray(y_true, dtype=np.float64)
    if len(y_true) < MIN_EVENTS:
        raise EstimationError(
            f"only {len(y_true)} labelled events with the version's predictions, at least {MIN_EVENTS} "
            "are needed to fit an error estimator (a few thousand give a good one): widen the window"
        )
    if not (np.isfinite(y_hat).all() and np.isfinite(y_true).all()):
        raise EstimationError("predictions and labels must be finite to fit an error estimator")
    with np.errstate(over="ignore", invalid="ignore"):
        errors = np.abs(y_hat - y_true)
    if not np.isfinite(errors).all():
        raise EstimationError("an error |y_hat - y_true| overflows float8: such events fit no estimator")
    estimator = HistGradientBoostingRegressor(
        max_iter=20, max_depth=4, learning_rate=0.3, random_state=RANDOM_STATE
    )
    estimator.fit(inputs(features, y_hat), errors)
    mae = float(errors.mean())
    if not mae > 0:
        raise EstimationError("the version makes no error on these events: there is nothing to estimate")
    return FittedEstimator(estimator, len(errors), mae, float(errors.std(ddof=1)))


def estimate(estimator: Any, features: Floats, y_hat: Floats, abs_error_std: float) -> Estimate | None:
    """The estimated MAE of the events (``None`` for none), its band clipped at 0."""
    if not len(y_hat):
        return None
    predicted = np.asarray(estimator.predict(inputs(features, y_hat)), dtype=np.float64)
    # an absolute error is never negative: a tree's leaf may be, slightly
    mae = float(np.clip(predicted, 0.0, None).mean())
    if not math.isfinite(mae):
        raise EstimationError("the error estimator returned non-finite values")
    half = BAND_SIGMAS * abs_error_std / math.sqrt(len(y_hat))
    return Estimate(len(y_hat), mae, max(0.0, mae - half), mae + half)
