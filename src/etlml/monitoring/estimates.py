"""The estimated MAE of each version with an error estimator on one interval, stored beside its
realized figures in ``model_performance`` (see :mod:`etlml.models.estimation`).

The estimator's inputs (f1, f2, f3, the version's y_hat) are read with one binary COPY per version,
decoded by NumPy without a loop over rows; an interval of more than
:data:`etlml.models.estimation.MAX_ESTIMATED_EVENTS` events is estimated on that many of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from etlml.errors import ModelError
from etlml.interval import Interval
from etlml.models import estimation
from etlml.models.estimators import StoredEstimator
from etlml.warehouse.connection import query

log = logging.getLogger(__name__)

_HEADER_BYTES = 19  # signature (11), flags (4), header extension length (4, zero)
_TRAILER_BYTES = 2
_ROW = np.dtype(
    [("fields", ">i2")]
    + [item for c in ("f1", "f2", "f3", "y_hat") for item in ((f"{c}_len", ">i4"), (c, ">f8"))]
)


@dataclass(frozen=True)
class EstimatedError:
    """One version's estimated MAE on an interval, with its band and threshold."""

    model_version: str
    n: int
    mae: float
    low: float
    high: float
    threshold: float
    reference_mae: float

    @property
    def alert(self) -> bool:
        return self.mae > self.threshold

    def to_xcom(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "n": self.n,
            "estimated_mae": self.mae,
            "band": [self.low, self.high],
            "threshold": self.threshold,
            "alert": self.alert,
        }


def read_inputs(
    cur: psycopg.Cursor[Any], interval: Interval, version: str, share: float
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """The features (n x 3, NaN where missing) and predictions of ``version`` on the interval (on the
    events whose id hashes into the first ``share`` of the range, when ``share`` < 1)."""
    params = {
        "start": interval.start,
        "version": version,
        "share": share,
        "limit": estimation.MAX_ESTIMATED_EVENTS,
    }
    with cur.copy(query("estimator_inputs"), params) as copy:
        data = b"".join(bytes(block) for block in copy)
    rows = np.frombuffer(
        data,
        dtype=_ROW,
        offset=_HEADER_BYTES,
        count=(len(data) - _HEADER_BYTES - _TRAILER_BYTES) // _ROW.itemsize,
    )
    features = np.column_stack([rows[c].astype(np.float64) for c in ("f1", "f2", "f3")]).reshape(-1, 3)
    return features, rows["y_hat"].astype(np.float64)


def estimate_interval(
    cur: psycopg.Cursor[Any], interval: Interval, n_predictions: dict[str, int], alert_ratio: float
) -> tuple[EstimatedError, ...]:
    """Estimate and store the MAE of every version of the interval that has an error estimator
    (``n_predictions``: the interval's predictions per version). An estimator that cannot be loaded
    (its file missing or changed) is logged and skipped: the realized figures are stored all the same."""
    found = []
    for version, uri, sha256, reference_mae, spread in cur.execute(
        query("interval_estimators"), {"start": interval.start}
    ).fetchall():
        stored = StoredEstimator(str(version), str(uri), str(sha256), float(reference_mae), float(spread))
        try:
            estimator = stored.load()
        except ModelError as exc:
            log.error("%s: no estimated MAE for %s: %s", interval.key, version, exc)
            continue
        share = min(1.0, estimation.MAX_ESTIMATED_EVENTS / max(1, n_predictions.get(str(version), 0)))
        features, y_hat = read_inputs(cur, interval, str(version), share)
        figures = estimation.estimate(estimator, features, y_hat, stored.reference_abs_error_std)
        if figures is None:
            continue
        found.append(
            EstimatedError(
                stored.model_version,
                figures.n,
                figures.mae,
                figures.low,
                figures.high,
                alert_ratio * stored.reference_mae,
                stored.reference_mae,
            )
        )
    for e in found:
        cur.execute(
            query("store_estimate"),
            {
                "start": interval.start,
                "version": e.model_version,
                "mae": e.mae,
                "low": e.low,
                "high": e.high,
                "threshold": e.threshold,
                "alert": e.alert,
            },
        )
    return tuple(found)
