"""DAG ``40_train_challenger``'s tasks: train a version on labelled events, then shadow it.

Both change the registry, which the pipeline role may not: they connect through the Airflow
connection ``warehouse_registry`` (``ETLML_REGISTRY_CONN_ID``), the warehouse owner's, when it is
defined, and otherwise through the warehouse connection (as in ``make demo``, where that is the owner).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from etlml import settings
from etlml.errors import PermanentError
from etlml.models import registry, training
from etlml.models.window import Window
from etlml.steps.run import fail_fast
from etlml.warehouse import connection, schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedVersion:
    """What ``train`` hands to ``shadow``: the version, its estimator and its holdout's metrics."""

    model_version: str
    estimator: str
    validation_metrics: dict[str, Any]

    def to_xcom(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "estimator": self.estimator,
            "validation_metrics": self.validation_metrics,
        }

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> TrainedVersion:
        return cls(str(value["model_version"]), str(value["estimator"]), dict(value["validation_metrics"]))


@contextmanager
def registry_connection() -> Iterator[psycopg.Connection[Any]]:
    """The owner's connection ``warehouse_registry`` if defined, else the warehouse connection;
    autocommit, so that each registry change commits on its own."""
    cfg = settings.load()
    try:
        conn = connection.connect(cfg.registry_conn_id)
    except connection.ConnectionMissingError:
        log.info(
            "no connection %r: changing the registry through %r", cfg.registry_conn_id, cfg.warehouse_conn_id
        )
        conn = connection.connect(cfg.warehouse_conn_id)
    with conn:
        conn.autocommit = True
        schema.check(conn)
        row = conn.execute(connection.query("may_change_registry")).fetchone()
        if row is None or not row[0]:
            raise PermanentError(
                f"role {conn.info.user!r} may not change the model registry: define the Airflow connection "
                f"{cfg.registry_conn_id!r} as the warehouse's owner (AIRFLOW_CONN_"
                f"{cfg.registry_conn_id.upper()}=postgresql://OWNER:PASSWORD@HOST:5432/DATABASE, or in "
                "the UI under Admin > Connections), or run `etlml models train` and `shadow` as the owner"
            )
        yield conn


@fail_fast
def train(
    run_ref: str, version: str, *, estimator: str, start: datetime, end: datetime, description: str = ""
) -> TrainedVersion:
    """Train and register ``version``. A retry (or rerun) that finds ``version`` already trained with
    the same estimator on the same window takes it as it is: versions are immutable."""
    window = Window(start, end)
    with registry_connection() as conn:
        try:
            shown = registry.show(conn, version)
        except registry.RegistryError:
            shown = None
        if shown is not None:
            same = (
                shown["params"].get("estimator") == estimator
                and shown["training_from"] == start
                and shown["training_to"] == end
            )
            if not same:
                raise registry.RegistryError(
                    f"model version {version!r} is already registered, not as {estimator} trained on "
                    f"[{start.isoformat()}, {end.isoformat()}); versions are immutable, choose a new name"
                )
            log.info("%s was already trained on this window (an earlier try of this task)", version)
            return TrainedVersion(version, estimator, dict(shown["validation_metrics"]))
        trained = training.train(
            conn,
            version,
            estimator=estimator,
            window=window,
            storage_root=settings.load().storage_root,
            actor=run_ref,
            description=description,
        )
    return TrainedVersion(version, estimator, trained.validation_metrics)


@fail_fast
def shadow(run_ref: str, trained: TrainedVersion) -> str | None:
    """Make the trained version the challenger; returns the challenger it replaces."""
    with registry_connection() as conn:
        if registry.aliases(conn).get("challenger") == trained.model_version:
            return trained.model_version  # a retry: already shadowing
        previous = registry.shadow(conn, trained.model_version, run_ref)
    log.info("%s shadows the champion now (it replaces %s)", trained.model_version, previous)
    return previous
