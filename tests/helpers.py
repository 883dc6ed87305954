"""Small helpers several test modules share."""

from __future__ import annotations

from typing import Any

import pandas as pd

from etlml.records import Layout
from etlml.storage import FileRef, FrameWriter
from scripts.check_links import HEADING, pages, prose


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


def doc_section(heading: str) -> str:
    """The text under ``heading`` (its exact words, any level) in the README or a page of docs/, up to the
    next heading of its level or above; the heading must be in exactly one of them."""
    found = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        levels = [len(m[1]) if (m := HEADING.match(line)) else 0 for line in prose(text)]
        for start, line in enumerate(prose(text)):
            match = HEADING.match(line)
            if match and match[2] == heading:
                after = [i for i in range(start + 1, len(levels)) if 0 < levels[i] <= levels[start]]
                found.append("\n".join(text.splitlines()[start + 1 : after[0] if after else None]))
    assert len(found) == 1, f"{heading!r} is a heading of {len(found)} documentation pages, not 1"
    return found[0]
