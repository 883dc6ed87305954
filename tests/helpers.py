"""Small helpers several test modules share."""

from __future__ import annotations

from typing import Any

import pandas as pd

from etlml.records import Layout
from etlml.storage import FileRef, FrameWriter


def write_frame(frame: pd.DataFrame, path: Any, layout: Layout) -> FileRef:
    """Write ``frame`` as one Parquet file of ``layout`` and return its reference."""
    with FrameWriter(path, layout) as out:
        out.write(frame)
    assert out.ref is not None
    return out.ref


def register_sklearn(
    conn: Any,
    version: str,
    folder: Any,
    storage_root: str,
    stats: Any,
    *,
    seed: int = 1,
    weights: tuple[float, float, float] = (1.0, -1.0, 0.5),
    intercept: float = 2.0,
    coef_scale: float = 1.0,
) -> str:
    """Fit a linear regression to ``y = x · weights + intercept`` on features drawn like the
    simulator's, save it with skops in ``folder``, register it as ``version`` (artifact stored under
    ``storage_root``) and return its recorded ``artifact_uri``. ``coef_scale`` scales the fitted
    coefficients, e.g. to 1e308 for a model whose output overflows."""
    import numpy as np
    import skops.io
    from sklearn.linear_model import LinearRegression

    from etlml.models import registry

    x = np.random.default_rng(seed).normal([10, 0, 100], [2, 1, 10], size=(100, 3))
    model = LinearRegression().fit(x, x @ list(weights) + intercept)
    model.coef_ = model.coef_ * coef_scale
    skops.io.dump(model, folder / "m.skops")
    registry.register_sklearn(
        conn,
        version,
        artifact_path=str(folder / "m.skops"),
        stats=stats,
        storage_root=storage_root,
        actor="t",
    )
    row = conn.execute(
        "SELECT artifact_uri FROM model_versions WHERE model_version = %s", (version,)
    ).fetchone()
    assert row is not None
    return str(row[0])
