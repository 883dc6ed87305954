"""The error estimator (direct loss estimation), pure: it learns where a version errs, estimates the
MAE of events without labels, bands it, and refuses what it cannot fit on."""

from __future__ import annotations

import numpy as np
import pytest

from etlml.models import estimation


def events(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features whose third column, when large, makes the version err more; a missing f2 here and there."""
    rng = np.random.default_rng(seed)
    features = rng.normal(0.0, 1.0, (n, 3))
    features[:, 2] += shift
    features[rng.random(n) < 0.05, 1] = np.nan
    y_hat = features[:, 0]
    y_true = y_hat + rng.normal(0.0, 0.1 + 0.2 * np.abs(features[:, 2]))
    return features, y_hat, y_true


def test_the_estimate_follows_the_error_where_the_inputs_move() -> None:
    fitted = estimation.fit(*events(5000, 1))
    assert fitted.n == 5000 and fitted.reference_mae > 0 and fitted.reference_abs_error_std > 0
    for shift in (0.0, 1.0):
        features, y_hat, y_true = events(4000, 2, shift)
        found = estimation.estimate(fitted.estimator, features, y_hat, fitted.reference_abs_error_std)
        assert found is not None and found.n == 4000
        assert found.mae == pytest.approx(np.abs(y_hat - y_true).mean(), rel=0.1)
        assert 0 <= found.low < found.mae < found.high
        assert found.high - found.mae == pytest.approx(
            estimation.BAND_SIGMAS * fitted.reference_abs_error_std / np.sqrt(4000)
        )


def test_no_events_no_estimate_and_too_few_or_non_finite_fit_nothing() -> None:
    fitted = estimation.fit(*events(500, 3))
    assert estimation.estimate(fitted.estimator, np.empty((0, 3)), np.empty(0), 1.0) is None
    with pytest.raises(estimation.EstimationError, match=f"at least {estimation.MIN_EVENTS}"):
        estimation.fit(*events(estimation.MIN_EVENTS - 1, 4))
    features, y_hat, y_true = events(500, 5)
    y_true[0] = np.inf
    with pytest.raises(estimation.EstimationError, match="finite"):
        estimation.fit(features, y_hat, y_true)
    y_true[0], y_hat[0] = -1.7e308, 1.7e308
    with pytest.raises(estimation.EstimationError, match="overflows"):
        estimation.fit(features, y_hat, y_true)
