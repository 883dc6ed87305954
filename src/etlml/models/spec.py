"""A model version as the registry stores it, checked before anything scores with it (pure).

``model_versions`` rows are immutable, so a checked :class:`VersionSpec` stays true for the version.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from etlml import FEATURES
from etlml.errors import ModelError
from etlml.features.stats import FeatureStats, parse_stats

Kind = Literal["linear", "sklearn"]
KINDS: tuple[Kind, ...] = ("linear", "sklearn")

VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A version's name (the ``model_versions`` CHECK says the same): one path segment, never ``..``."""


def check_version_name(version: str) -> str:
    """Return ``version`` if it is a valid name, else raise :class:`ModelError` saying what is allowed.

    Checked before anything is written: the name becomes a folder of the artifact store.
    """
    if not VERSION_NAME.fullmatch(version):
        raise ModelError(
            f"model version {version!r} is not a valid name: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. v2 or sk-2026.11)"
        )
    return version


@dataclass(frozen=True)
class VersionSpec:
    """One version: its kind, normalization statistics, and either linear coefficients or the skops
    artifact of a fitted scikit-learn estimator with the sha256 recorded at registration."""

    version: str
    kind: Kind
    stats: dict[str, FeatureStats]
    coef: dict[str, float] = field(default_factory=dict)
    intercept: float = 0.0
    artifact_uri: str | None = None
    artifact_sha256: str | None = None


def parse(
    version: str,
    kind: str,
    params: Mapping[str, Any],
    feature_stats: Mapping[str, Any],
    *,
    artifact_uri: str | None = None,
    artifact_sha256: str | None = None,
) -> VersionSpec:
    """Check a ``model_versions`` row; raise :class:`ModelError` saying what is wrong with it."""
    if kind not in KINDS:
        raise ModelError(f"model {version!r} has kind {kind!r}, not 'linear' or 'sklearn'")
    stats = parse_stats(version, feature_stats)
    if kind == "sklearn":
        if not artifact_uri or not artifact_sha256:
            raise ModelError(f"model {version!r} is an sklearn version without an artifact and its sha256")
        return VersionSpec(
            version, "sklearn", stats, artifact_uri=artifact_uri, artifact_sha256=artifact_sha256
        )
    try:
        coef = {f: float(params["coef"][f]) for f in FEATURES}
        intercept = float(params.get("intercept", 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model {version!r} has malformed params: {exc!r}") from exc
    if not all(math.isfinite(v) for v in [*coef.values(), intercept]):
        raise ModelError(f"model {version!r} has a non-finite coefficient or intercept")
    return VersionSpec(version, "linear", stats, coef=coef, intercept=intercept)
