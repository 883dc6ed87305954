"""Intermediate Parquet files under the storage root, one folder per DAG and data interval."""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etlml.interval import Interval

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


class StorageIntegrityError(RuntimeError):
    """A file differs from what the task that wrote it recorded."""


@dataclass(frozen=True)
class FileRef:
    """What travels through XCom about a file: where it is, how many rows, its sha256."""

    path: str
    rows: int
    sha256: str

    def as_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, meta: dict[str, Any]) -> FileRef:
        return cls(path=str(meta["path"]), rows=int(meta["rows"]), sha256=str(meta["sha256"]))


def run_folder(root: str, dag_id: str, interval: Interval) -> ObjectStoragePath:
    """``<root>/<dag_id>/<interval key>/``: a rerun of the interval writes to the same place."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(root) / dag_id / interval.key


def write_frame(frame: pd.DataFrame, path: ObjectStoragePath) -> FileRef:
    """Write ``frame`` as Parquet to ``path`` (replacing it) and return its reference."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="zstd")
    data = buffer.getbuffer()
    path.parent.mkdir(parents=True, exist_ok=True)
    target: Any = path  # ObjectStoragePath.open is untyped
    with target.open("wb") as fh:
        fh.write(data)
    return FileRef(path=str(path), rows=len(frame), sha256=hashlib.sha256(data).hexdigest())


def read_frame(ref: FileRef) -> pd.DataFrame:
    """Read a file written by :func:`write_frame`, refusing it if its checksum changed."""
    from airflow.sdk import ObjectStoragePath

    data = ObjectStoragePath(ref.path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.sha256:
        raise StorageIntegrityError(
            f"{ref.path} has sha256 {digest}, but its writer recorded {ref.sha256}; "
            "the file was changed or partly written: clear the upstream task to rewrite it"
        )
    frame: pd.DataFrame = pq.read_table(io.BytesIO(data)).to_pandas()
    if len(frame) != ref.rows:
        raise StorageIntegrityError(f"{ref.path} holds {len(frame)} rows, its writer recorded {ref.rows}")
    return frame
