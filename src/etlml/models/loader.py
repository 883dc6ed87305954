"""Load a registered version as a scorer: its checked record, and for sklearn its verified artifact."""

from __future__ import annotations

from typing import Any

import psycopg

from etlml.models import artifacts, registry
from etlml.models.scoring import LinearModel, Scorer, SklearnModel


def load(conn: psycopg.Connection[Any], version: str) -> Scorer:
    """Read one immutable version; an sklearn artifact is verified against its recorded sha256."""
    spec = registry.read_spec(conn, version)
    if spec.kind == "sklearn":
        estimator = artifacts.load_estimator(str(spec.artifact_uri), str(spec.artifact_sha256))
        return SklearnModel(spec.version, estimator, spec.stats)
    return LinearModel.from_spec(spec)
