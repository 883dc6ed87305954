"""Intermediate Parquet files under the storage root, one folder per DAG run of a data interval.

Files are written and read :data:`ROW_GROUP_ROWS` rows at a time (one Parquet row group each), so a
step's memory does not grow with the size of its interval. A file appears under its name only once
it is complete, so a reader never sees a half-written file and a write that fails leaves the earlier
file whole: on a local filesystem it is written under a hidden temporary name, then renamed; on an
object store the upload is completed only when the writer closes without an error, and aborted
otherwise (see :class:`FrameWriter`).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etlml.errors import PermanentError
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


class StorageIntegrityError(PermanentError, RuntimeError):
    """A file differs from what the task that wrote it recorded: something other than its writer
    changed it, and reading it again cannot help (the task fails without retry)."""


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


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def run_folder(root: str, dag_id: str, interval: Interval, run_id: str) -> ObjectStoragePath:
    """``<root>/<dag_id>/<interval key>/<run>/``: each DAG run of an interval has a folder of its own,
    so two runs of one interval (a manual run beside the scheduled one, a backfill) never write each
    other's files, and a cleared task of an older run finds its own. ``<run>`` is the run id with
    every character outside ``[A-Za-z0-9._-]`` replaced by ``_``, then ``-`` and 8 hex digits of the
    id's sha256, so distinct ids never share a folder."""
    from airflow.sdk import ObjectStoragePath

    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return ObjectStoragePath(root) / dag_id / interval.key / f"{_UNSAFE.sub('_', run_id)}-{digest}"


RUN_MARKER = "_run.json"
"""The file in each run folder naming its DAG run, for ``90_housekeeping``."""


def claim(folder: ObjectStoragePath, dag_id: str, run_id: str) -> ObjectStoragePath:
    """Create ``folder`` with its :data:`RUN_MARKER` (``{"dag_id", "run_id"}``) unless it has one."""
    marker: Any = folder / RUN_MARKER
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"dag_id": dag_id, "run_id": run_id}))
    return folder


@dataclass(frozen=True)
class RunFolder:
    """One run folder as ``90_housekeeping`` sees it: its run (``None`` for a folder without a
    marker, from before run folders had one), when a file in it last changed, and its size."""

    path: ObjectStoragePath
    dag_id: str | None
    run_id: str | None
    modified: datetime
    size: int


def run_folders(root: str) -> Iterator[RunFolder]:
    """Every run folder under ``root``: ``<dag_id>/<interval>/<run>/``, and interval folders that
    hold files themselves (the layout before folders per run)."""
    from airflow.sdk import ObjectStoragePath

    top = ObjectStoragePath(root)
    if not top.exists():
        return
    for dag_folder in _dag_folders(top):
        for interval_folder in _interval_folders(dag_folder):
            if any(_files(interval_folder, recursive=False)):
                yield _described(interval_folder, dag_folder.name, None)
                continue
            for folder in _folders(interval_folder):
                marker: Any = folder / RUN_MARKER
                named = json.loads(marker.read_text()) if marker.exists() else {}
                yield _described(folder, named.get("dag_id", dag_folder.name), named.get("run_id"))


_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_INTERVAL_KEY = re.compile(r"^\d{8}T\d{6}Z_\d{8}T\d{6}Z$")


def _dag_folders(root: Any) -> list[Any]:
    """The folders under the storage root named like a DAG id: not the model artifacts' folder
    (``+models``, a name no DAG id can take)."""
    return [folder for folder in _folders(root) if _DAG_ID.match(folder.name)]


def _interval_folders(dag_folder: Any) -> list[Any]:
    """The folders of a DAG folder named like an interval key (``Interval.key``): nothing else, such
    as the model artifacts kept under ``models/<version>/`` by earlier releases, is a run folder."""
    return [folder for folder in _folders(dag_folder) if _INTERVAL_KEY.match(folder.name)]


def _folders(path: Any) -> list[Any]:
    return sorted((p for p in path.iterdir() if p.is_dir()), key=str)


def _files(path: Any, *, recursive: bool) -> Iterator[Any]:
    for child in path.iterdir():
        if child.is_dir():
            if recursive:
                yield from _files(child, recursive=True)
        else:
            yield child


def _described(folder: Any, dag_id: str | None, run_id: str | None) -> RunFolder:
    stats = [f.stat() for f in _files(folder, recursive=True)]
    modified = max((st.st_mtime for st in stats), default=0.0)
    return RunFolder(
        folder,
        dag_id,
        run_id,
        datetime.fromtimestamp(modified, tz=UTC),
        sum(int(st.st_size) for st in stats),
    )


def remove(folder: ObjectStoragePath) -> None:
    """Delete a run folder and everything in it."""
    target: Any = folder
    target.rmdir(recursive=True)


def remove_empty_folders(root: str) -> None:
    """Delete the DAG and interval folders under ``root`` that no longer hold anything."""
    from airflow.sdk import ObjectStoragePath

    top = ObjectStoragePath(root)
    if not top.exists():
        return
    for dag_folder in _dag_folders(top):
        for interval_folder in _interval_folders(dag_folder):
            if not any(interval_folder.iterdir()):
                interval_folder.rmdir()
        if not any(dag_folder.iterdir()):
            dag_folder.rmdir()


def at(uri: str) -> ObjectStoragePath:
    """The ``ObjectStoragePath`` of a file a :class:`FileRef` names."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(uri)


def _options(schema: pa.Schema, compression: str) -> dict[str, Any]:
    """No column statistics: a run folder's files are read whole, a row group at a time, never
    filtered by them, and their min and max cost about a third of a write (strings most)."""
    return {
        "compression": compression,
        "use_dictionary": [name for name in schema.names if name in _DICTIONARY_COLUMNS],
        "write_statistics": False,
    }


def _sha256(path: ObjectStoragePath) -> str:
    digest = hashlib.sha256()
    source: Any = path  # ObjectStoragePath.open is untyped
    if source.protocol not in ("file", "local"):
        # an object store's client keeps what it listed (sizes included) for the life of its process:
        # read the object as it is now, or a changed one is read by its old size and never checked
        source.fs.invalidate_cache(source.path)
    with _open_for_reading(path) as fh:
        while block := fh.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


class FrameWriter:
    """Write frames of one layout as row groups of a Parquet file; :attr:`ref` once closed.

    The file always exists, with the layout's columns, so readers need no special case. The name
    holds the earlier file, whole, until the writer closes without an error (an error raised in the
    ``with`` block, by the writer or by its caller, leaves it as it was):

    - on a local filesystem the file is written under a hidden temporary name in the same folder and
      renamed into place (atomic); on an error the temporary file is removed (a killed process leaves
      it behind, hidden, and the housekeeping DAG deletes it with its run folder);
    - on an object store the file is uploaded to its name, and the upload is completed (one PUT, or
      the multipart upload's completion: atomic either way) only then; on an error it is aborted,
      deleting the parts already sent. A killed process completes nothing: a file that had parts on
      the server leaves an unfinished multipart upload that no reader sees (an S3 lifecycle rule,
      ``AbortIncompleteMultipartUpload``, deletes its parts).
    """

    def __init__(self, path: ObjectStoragePath, layout: Layout, *, compression: str = "zstd") -> None:
        self.path = path
        self.compression = compression
        schema = pa.Schema.from_pandas(layout.empty(), preserve_index=False)
        for name, kind in layout.arrow_types().items():  # what an empty object column cannot tell
            schema = schema.set(schema.get_field_index(name), pa.field(name, getattr(pa, kind)()))
        self.schema = schema
        self.rows = 0
        self.ref: FileRef | None = None
        self._fh: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._partial = path

    def __enter__(self) -> FrameWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = _partial_path(self.path)
        self._fh = _open_for_writing(self._partial)
        self._writer = pq.ParquetWriter(self._fh, self.schema, **_options(self.schema, self.compression))
        return self

    def write(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self.write_table(self.table(frame))

    def table(self, frame: pd.DataFrame) -> pa.Table:
        """A frame of the layout in Arrow, as :meth:`write` writes it."""
        return pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)

    def write_table(self, table: pa.Table) -> None:
        """Write rows already in Arrow, of the layout's schema."""
        assert self._writer is not None, "use FrameWriter as a context manager"
        if table.num_rows:
            self._writer.write_table(table.cast(self.schema), row_group_size=ROW_GROUP_ROWS)
            self.rows += table.num_rows

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._writer is not None
        completed = False
        try:
            self._writer.close()  # the footer
            if kind is None:
                self._fh.close()  # on an object store, the upload completes here
                completed = True
        finally:
            if not completed:
                self._discard()
        if kind is not None:
            return
        sha256 = _sha256(self._partial)
        partial: Any = self._partial
        if partial != self.path:
            partial.rename(self.path)  # os.rename on a local filesystem: atomic, replaces the old file
        self.ref = FileRef(path=str(self.path), rows=self.rows, sha256=sha256)

    def _discard(self) -> None:
        """Throw away what was written: the name keeps what it held."""
        partial: Any = self._partial
        if partial != self.path:
            self._fh.close()
            partial.unlink(missing_ok=True)
            return
        self._fh.discard()  # aborts a multipart upload, deleting its parts; drops the buffer
        self._fh.closed = True  # so that no close(), not even the collector's, uploads the rest


def _is_local(path: ObjectStoragePath) -> bool:
    return getattr(path, "protocol", "file") in {"file", "local"}


def _partial_path(path: ObjectStoragePath) -> ObjectStoragePath:
    """Where a file is written before it is complete: a hidden name beside it on a local filesystem;
    the name itself on an object store, where the upload completes only when the writer does."""
    if not _is_local(path):
        return path
    return path.parent / f".{path.name}.{uuid.uuid4().hex}.partial"


def _open_for_writing(path: ObjectStoragePath) -> Any:
    """``path`` opened to write: the filesystem's own file (on an object store fsspec's buffered
    file: ``discard()`` aborts its upload), not ``ObjectStoragePath.open``'s wrapper of it, which
    would hide the file's ``closed`` flag that :meth:`FrameWriter._discard` sets, and reports every
    write to Airflow's hook lineage collector (see :func:`_open_for_reading`)."""
    target: Any = path
    return target.fs.open(target.path, "wb")


def _open_for_reading(path: ObjectStoragePath) -> Any:
    """``path`` opened to read, through its filesystem rather than ``ObjectStoragePath.open``: the
    files of a run folder are the pipeline's own intermediate files, not assets, and that wrapper
    reports each read and write as lineage; its first report starts Airflow's hook lineage collector,
    which loads every plugin (seconds, in the first step of a task that touches a file)."""
    source: Any = path
    return source.fs.open(source.path, "rb")


def _arrow_batches(ref: FileRef, columns: list[str] | None, rows: int) -> Iterator[pa.Table]:
    """The file's ``columns`` as Arrow tables of at most ``rows`` rows (one, empty, if it has none),
    after checking its checksum and row count."""
    path = at(ref.path)
    digest = _sha256(path)
    if digest != ref.sha256:
        raise StorageIntegrityError(
            f"{ref.path} has sha256 {digest}, but its writer recorded {ref.sha256}; "
            "something other than its writer changed it after it was complete (a run folder is its DAG "
            "run's own, so a hand edit, a restore or another tool); retrying reads the same file: clear the "
            "upstream task to rewrite it"
        )
    with _open_for_reading(path) as fh:
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


def read_tables(
    ref: FileRef, columns: list[str] | None = None, rows: int = ROW_GROUP_ROWS
) -> Iterator[pa.Table]:
    """:func:`read_frames`, the rows left in Arrow."""
    return _arrow_batches(ref, columns, rows)


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
