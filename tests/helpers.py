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
