"""Reference profiles and the population stability index (PSI).

A profile describes one column's distribution on the data a model version was fitted on:
``{"edges": [e1, ..., ek], "expected": [p0, ..., pk], "missing_share": m, "n": n}``, where the k
increasing inner edges split the line into the bins ``(-inf, e1), [e1, e2), ..., [ek, +inf)``,
numbered 0..k exactly as PostgreSQL's ``width_bucket(value, edges)`` numbers them, ``expected`` holds
each bin's share of the non-missing values, and ``missing_share`` the share of missing ones.
Monitoring compares an interval's shares with ``expected`` in SQL; :func:`psi` is the same formula.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# The columns a reference profile covers: the raw inputs and the model's score.
PROFILED = ("f1", "f2", "f3", "score")
DEFAULT_BINS = 10
# Shares are floored at this before the logarithm, so a bin that is empty on one side gives a large
# but finite PSI instead of infinity.
SHARE_FLOOR = 1e-4


class ProfileError(ValueError):
    """A profile cannot be fitted (no values) or a stored one is malformed."""


def column_profile(values: Sequence[float | None] | np.ndarray, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """The profile of one column: quantile edges taken from the values themselves (ties merged, so
    there may be fewer than ``bins`` bins) and the share of the non-missing values in each bin.
    NaN and None count as missing."""
    if bins < 2:
        raise ProfileError(f"a profile needs at least 2 bins, got {bins}")
    arr = np.asarray(
        [np.nan if v is None else v for v in values] if not isinstance(values, np.ndarray) else values,
        dtype=float,
    )
    present = arr[np.isfinite(arr)]
    if present.size == 0:
        raise ProfileError("cannot profile a column without a single finite value")
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="lower"))
    # side="right": a value equal to an edge belongs to the bin that edge opens, like width_bucket
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    return {
        "edges": [float(e) for e in edges],
        "expected": [float(c) / present.size for c in counts],
        "missing_share": 1.0 - present.size / arr.size,
        "n": int(arr.size),
    }


def reference_profile(
    columns: Mapping[str, Sequence[float | None] | np.ndarray], bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """The profile of every column in :data:`PROFILED` (``columns`` must hold all four)."""
    missing = [c for c in PROFILED if c not in columns]
    if missing:
        raise ProfileError(f"a reference profile needs the columns {list(PROFILED)}; missing {missing}")
    return {c: column_profile(columns[c], bins) for c in PROFILED}


def check_profile(profile: Mapping[str, Any]) -> None:
    """Refuse a stored profile that monitoring could not use, saying what is wrong."""
    for column in PROFILED:
        entry = profile.get(column)
        if not isinstance(entry, Mapping):
            raise ProfileError(f"reference profile lacks column {column!r}")
        edges, expected = entry.get("edges"), entry.get("expected")
        if not isinstance(edges, list) or not isinstance(expected, list) or len(expected) != len(edges) + 1:
            raise ProfileError(f"profile of {column!r} needs k edges and k + 1 expected shares")
        if any(not math.isfinite(float(e)) for e in edges) or any(
            b <= a for a, b in itertools.pairwise(edges)
        ):
            raise ProfileError(f"profile of {column!r} has edges that are not finite and increasing: {edges}")
        if any(p < 0 for p in expected) or not math.isclose(sum(expected), 1.0, abs_tol=1e-6):
            raise ProfileError(f"expected shares of {column!r} must be >= 0 and sum to 1, got {expected}")


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of ``actual`` bin shares against ``expected`` ones:
    sum over bins of (a - e) * ln(a / e), both floored at :data:`SHARE_FLOOR`."""
    if len(expected) != len(actual):
        raise ProfileError(
            f"PSI needs as many actual shares as expected, got {len(actual)} and {len(expected)}"
        )
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_floored, a_floored = max(e, SHARE_FLOOR), max(a, SHARE_FLOOR)
        total += (a_floored - e_floored) * math.log(a_floored / e_floored)
    return total


def shares(edges: Sequence[float], values: np.ndarray) -> list[float]:
    """The share of the finite ``values`` in each bin of ``edges`` (what monitoring computes in SQL)."""
    present = values[np.isfinite(values)]
    if present.size == 0:
        return [0.0] * (len(edges) + 1)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=float), present, side="right"), minlength=len(edges) + 1
    )
    return [float(c) / present.size for c in counts]
