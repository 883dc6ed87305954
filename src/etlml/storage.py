"""Intermediate Parquet files under the storage root, one folder per DAG and data interval.

Files are written and read :data:`ROW_GROUP_ROWS` rows at a time (one Parquet row group each), so a
step's memory does not grow with the size of its interval.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etlml.interval import Interval
from etlml.records import Layout

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


# Dictionary encoding only where values repeat: tried on unique ids and random floats, it more
# than doubles the time to write a file (and to read it back) for no saving in size.
_DICTIONARY_COLUMNS = ("source_file", "reason", "model_version", "normalized_with")

ROW_GROUP_ROWS = 250_000
"""Rows per Parquet row group, and per frame a streaming step holds in memory."""
_READ_BYTES = 8 << 20


class StorageIntegrityError(RuntimeError):
    """A file differs from what the task that wrote it recorded."""


@dataclass(frozen=True)
class FileRef:
    """What travels through XCom about a file: where it is, how many rows, its sha256."""

    path: str
    rows: int
    sha256: str

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, meta: Mapping[str, Any]) -> FileRef:
        return cls(path=str(meta["path"]), rows=int(meta["rows"]), sha256=str(meta["sha256"]))


def run_folder(root: str, dag_id: str, interval: Interval) -> ObjectStoragePath:
    """``<root>/<dag_id>/<interval key>/``: a rerun of the interval writes to the same place."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(root) / dag_id / interval.key


def at(uri: str) -> ObjectStoragePath:
    """The ``ObjectStoragePath`` of a file a :class:`FileRef` names."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(uri)


def _options(schema: pa.Schema) -> dict[str, Any]:
    return {
        "compression": "zstd",
        "use_dictionary": [name for name in schema.names if name in _DICTIONARY_COLUMNS],
    }


def _sha256(path: ObjectStoragePath) -> str:
    digest = hashlib.sha256()
    source: Any = path  # ObjectStoragePath.open is untyped
    with source.open("rb") as fh:
        while block := fh.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


class FrameWriter:
    """Write frames of one layout as row groups of a Parquet file; :attr:`ref` once closed.

    The file always exists, with the layout's columns, so readers need no special case. It is replaced
    as a whole when the writer closes without an error; on an error the partial file is left for the
    retry to overwrite, and nothing refers to it.
    """

    def __init__(self, path: ObjectStoragePath, layout: Layout) -> None:
        self.path = path
        schema = pa.Schema.from_pandas(layout.empty(), preserve_index=False)
        for name, kind in layout.arrow_types().items():  # what an empty object column cannot tell
            schema = schema.set(schema.get_field_index(name), pa.field(name, getattr(pa, kind)()))
        self.schema = schema
        self.rows = 0
        self.ref: FileRef | None = None
        self._fh: Any = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> FrameWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        target: Any = self.path
        self._fh = target.open("wb")
        self._writer = pq.ParquetWriter(self._fh, self.schema, **_options(self.schema))
        return self

    def write(self, frame: pd.DataFrame) -> None:
        assert self._writer is not None, "use FrameWriter as a context manager"
        if len(frame):
            table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
            self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            self.rows += len(frame)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._writer is not None
        self._writer.close()
        self._fh.close()
        if kind is None:
            self.ref = FileRef(path=str(self.path), rows=self.rows, sha256=_sha256(self.path))


def _arrow_batches(ref: FileRef, columns: list[str] | None, rows: int) -> Iterator[pa.Table]:
    """The file's ``columns`` as Arrow tables of at most ``rows`` rows (one, empty, if it has none),
    after checking its checksum and row count."""
    path = at(ref.path)
    digest = _sha256(path)
    if digest != ref.sha256:
        raise StorageIntegrityError(
            f"{ref.path} has sha256 {digest}, but its writer recorded {ref.sha256}; "
            "the file was changed or partly written: clear the upstream task to rewrite it"
        )
    source: Any = path
    with source.open("rb") as fh:
        parquet = pq.ParquetFile(fh)
        if parquet.metadata.num_rows != ref.rows:
            raise StorageIntegrityError(
                f"{ref.path} holds {parquet.metadata.num_rows} rows, its writer recorded {ref.rows}"
            )
        if ref.rows == 0:
            yield parquet.schema_arrow.empty_table().select(columns or parquet.schema_arrow.names)
            return
        for batch in parquet.iter_batches(batch_size=rows, columns=columns):
            yield pa.Table.from_batches([batch])


def read_frames(
    ref: FileRef, columns: list[str] | None = None, rows: int = ROW_GROUP_ROWS
) -> Iterator[pd.DataFrame]:
    """The frames of a file written by :class:`FrameWriter`, ``rows`` at a time, after checking its
    checksum; memory holds one frame."""
    for table in _arrow_batches(ref, columns, rows):
        yield table.to_pandas()


def read_table(ref: FileRef, columns: list[str] | None = None) -> pa.Table:
    """The ``columns`` of a whole file as one Arrow table, after checking its checksum."""
    return pa.concat_tables(_arrow_batches(ref, columns, ROW_GROUP_ROWS))


def read_frame(ref: FileRef) -> pd.DataFrame:
    """Read a whole file written by :class:`FrameWriter`, refusing it if its checksum changed."""
    frame: pd.DataFrame = read_table(ref).to_pandas()
    return frame
