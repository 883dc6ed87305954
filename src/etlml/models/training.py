"""Train a version on the warehouse's labelled events and register it with its training evidence."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

from etlml.models import artifacts, estimation, estimators, fitting, registry
from etlml.models.window import Window
from etlml.warehouse.connection import query

log = logging.getLogger(__name__)


def labelled_events(conn: psycopg.Connection[Any], window: Window) -> pd.DataFrame:
    """The window's labelled processed events: event_id, ts_utc, f1, f2, f3 (NaN where missing), y_true."""
    rows = conn.execute(query("labelled_training_events"), window.params()).fetchall()
    frame = pd.DataFrame(rows, columns=["event_id", "ts_utc", "f1", "f2", "f3", "y_true"])
    return frame.astype({"f1": "float64", "f2": "float64", "f3": "float64", "y_true": "float64"})


def store_estimator(
    conn: psycopg.Connection[Any],
    version: str,
    fitted: estimation.FittedEstimator | None,
    *,
    storage_root: str,
    actor: str,
) -> None:
    """Record the error estimator a training fitted on its holdout (see :mod:`etlml.models.estimators`);
    without one (a holdout too small), say how to fit one later."""
    if fitted is None:
        log.warning(
            "%s: its holdout has fewer than %d events, too few to fit an error estimator; fit one on "
            "later labelled events with `etlml models fit-estimator %s --from ... --to ...`",
            version,
            estimation.MIN_EVENTS,
            version,
        )
        return
    estimators.store(conn, version, fitted, storage_root=storage_root, actor=actor, fitted_on="holdout")


def train(
    conn: psycopg.Connection[Any],
    version: str,
    *,
    estimator: str,
    window: Window,
    storage_root: str,
    actor: str,
    description: str = "",
) -> fitting.Trained:
    """Fit ``estimator`` on the window's labelled events, save it with skops and register it as
    ``version`` with its statistics, reference profile, training window and validation metrics.

    Refuses a taken or invalid name before reading anything. Call it on a connection with no
    transaction open (the registration commits on its own).
    """
    registry.check_new_name(conn, version)
    fitting.make_estimator(estimator)
    frame = labelled_events(conn, window)
    trained = fitting.train(frame, estimator, version)
    with tempfile.TemporaryDirectory(prefix="etlml-train-") as folder:
        path = Path(folder, "model.skops")
        artifacts.dump(trained.estimator, path)
        registry.register_sklearn(
            conn,
            version,
            artifact_path=str(path),
            stats=trained.stats,
            storage_root=storage_root,
            actor=actor,
            description=description,
            params={"estimator": estimator},
            reference_profile=trained.reference_profile,
            training_from=window.start,
            training_to=window.end,
            validation_metrics=trained.validation_metrics,
        )
    store_estimator(conn, version, trained.error_estimator, storage_root=storage_root, actor=actor)
    log.info(
        "trained %s (%s) on %d labelled events: %s",
        version,
        estimator,
        len(frame),
        trained.validation_metrics,
    )
    return trained
