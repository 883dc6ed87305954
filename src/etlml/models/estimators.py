"""Error estimators in the registry: fitted when a version is trained, or for an existing version
from stored labelled events (``etlml models fit-estimator``); stored with skops and their sha256 in
``error_estimators``, and loaded, checked, by ``30_monitor``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from etlml.models import artifacts, estimation, registry
from etlml.warehouse.connection import query

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredEstimator:
    """An ``error_estimators`` row: where the estimator is and what it was fitted on."""

    model_version: str
    artifact_uri: str
    artifact_sha256: str
    reference_mae: float
    reference_abs_error_std: float

    def load(self) -> Any:
        """The estimator, refused unless its bytes have the recorded sha256."""
        return artifacts.load_estimator(self.artifact_uri, self.artifact_sha256)


def store(
    conn: psycopg.Connection[Any],
    version: str,
    fitted: estimation.FittedEstimator,
    *,
    storage_root: str,
    actor: str,
    fitted_on: str,
    window: tuple[datetime, datetime] | None = None,
) -> None:
    """Save ``fitted`` under the storage root and record it as ``version``'s error estimator
    (replacing an earlier one) with a ``fit_estimator`` event in ``model_events``, in a transaction
    of its own."""
    try:
        uri, sha256 = artifacts.store_error_estimator(fitted.estimator, storage_root, version)
    except OSError as exc:
        raise registry.RegistryError(
            f"the error estimator of {version!r} cannot be written under {storage_root} ({exc}); check "
            "ETLML_STORAGE_ROOT and its permissions, then fit it again (nothing was recorded)"
        ) from exc
    with conn.transaction():
        conn.execute(
            query("upsert_error_estimator"),
            {
                "model_version": version,
                "artifact_uri": uri,
                "artifact_sha256": sha256,
                "n": fitted.n,
                "reference_mae": fitted.reference_mae,
                "reference_abs_error_std": fitted.reference_abs_error_std,
                "fitted_on": fitted_on,
                "window_from": None if window is None else window[0],
                "window_to": None if window is None else window[1],
                "fitted_by": actor,
            },
        )
        _record_event(conn, version, fitted, actor=actor, fitted_on=fitted_on, sha256=sha256, window=window)
    log.info(
        "error estimator of %s stored (%s): %d events, MAE %.6g",
        version,
        fitted_on,
        fitted.n,
        fitted.reference_mae,
    )


def _record_event(
    conn: psycopg.Connection[Any],
    version: str,
    fitted: estimation.FittedEstimator,
    *,
    actor: str,
    fitted_on: str,
    sha256: str,
    window: tuple[datetime, datetime] | None,
) -> None:
    """The ``fit_estimator`` event of ``model_events``: who fitted what, on which events."""
    details = {
        "fitted_on": fitted_on,
        "n": fitted.n,
        "reference_mae": fitted.reference_mae,
        "artifact_sha256": sha256,
        "window": None if window is None else [w.isoformat() for w in window],
    }
    conn.execute(
        query("insert_model_event"),
        {
            "event": "fit_estimator",
            "model_version": version,
            "previous_version": None,
            "actor": actor,
            "details": Jsonb(details),
        },
    )


def show(conn: psycopg.Connection[Any], version: str) -> dict[str, Any] | None:
    """``version``'s error estimator row as a dict, or ``None``."""
    row = conn.execute(query("error_estimator"), {"model_version": version}).fetchone()
    keys = (
        "model_version",
        "artifact_uri",
        "artifact_sha256",
        "n",
        "reference_mae",
        "reference_abs_error_std",
        "fitted_on",
        "window_from",
        "window_to",
        "fitted_by",
        "fitted_at",
    )
    return None if row is None else dict(zip(keys, row, strict=True))


def _overlaps_training(
    conn: psycopg.Connection[Any], version: str, window: tuple[datetime, datetime]
) -> str | None:
    shown = registry.show(conn, version)
    start: datetime | None = shown["training_from"]
    end: datetime | None = shown["training_to"]
    if start is None or end is None or window[1] <= start or end <= window[0]:
        return None
    return f"[{start.isoformat()}, {end.isoformat()})"


def fit_for(
    conn: psycopg.Connection[Any],
    version: str,
    window: tuple[datetime, datetime],
    *,
    storage_root: str,
    actor: str,
) -> dict[str, Any]:
    """Fit ``version``'s error estimator on the labelled events of ``window`` that it predicted
    (its stored predictions), and store it. The window must not overlap the version's training window:
    on events it was fitted on, a version errs less than it will on new ones."""
    registry.read_spec(conn, version)  # an unknown version says so
    trained_on = _overlaps_training(conn, version, window)
    if trained_on is not None:
        raise registry.RegistryError(
            f"{version!r} was trained on the intervals starting in {trained_on}, which the window "
            f"[{window[0].isoformat()}, {window[1].isoformat()}) overlaps: fit its error estimator "
            "on labelled events it did not train on"
        )
    params = {"from": window[0], "to": window[1], "version": version}
    rows = conn.execute(query("labelled_predictions"), params).fetchall()
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)  # NULL features become NaN
    try:
        fitted = estimation.fit(table[:, :3], table[:, 3], table[:, 4])
    except estimation.EstimationError as exc:
        raise registry.RegistryError(
            f"{exc} (labelled events of intervals starting in [{window[0].isoformat()}, "
            f"{window[1].isoformat()}) with stored predictions of {version!r}: shadow or rescore it first)"
        ) from None
    store(
        conn,
        version,
        fitted,
        storage_root=storage_root,
        actor=actor,
        fitted_on="labelled events",
        window=window,
    )
    shown = show(conn, version)
    assert shown is not None  # just stored
    return shown
