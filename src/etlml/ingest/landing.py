"""Landing files: every file of a data interval's partition folder, read into records with provenance.

The partition of an interval is ``<landing root>/YYYY-MM-DD/HHMM/`` of its UTC start (labels:
``<landing root>/labels/YYYY-MM-DD/HHMM/``, which no event partition can be), read through
``ObjectStoragePath`` (``file://``, ``s3://``, ...). Formats go by extension: ``.jsonl``, ``.csv``,
``.parquet``, and gzip-compressed ``.jsonl.gz`` and ``.csv.gz`` (``etlml.ingest.formats``). Files
are read one after the other, a chunk of records at a time, so memory holds one chunk however large
the partition. Reading never rejects anything on its own account except what it cannot or must not
read: a file whose format it does not know, a symbolic link (never followed), a file larger than the
size limit, a file that cannot be read, and the records :mod:`etlml.ingest.formats` cannot read;
every value is passed on as text for ``etlml.ingest.contract`` to judge. Names starting with ``.`` or
``_`` (uploads in progress, ``_SUCCESS`` markers), sub-folders and special files are skipped and logged.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from etlml.errors import SettingsError
from etlml.ingest import columnar, formats
from etlml.ingest.contract import printable
from etlml.ingest.ledger import FileEntry
from etlml.interval import Interval

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

EXTENSIONS = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet")
WHOLE_FILE = 0  # the row_number of a record that stands for a whole file
RAW_HEAD_BYTES = 64 * 1024  # the raw value of a whole-file record: at most the file's first bytes
DEFAULT_MAX_FILE_BYTES = 1024**3
CHUNK_RECORDS = 100_000
_BLOCK_BYTES = 1 << 20
_GZIP_ERRORS = (OSError, EOFError, zlib.error)
_LINK = "a symbolic link, never followed: nothing is read from what it points to; deliver the file itself"


class LandingFileChangedError(RuntimeError):
    """A file changed while it was read (it grew, or became unreadable after a first pass found it
    readable); the task is retried and reads the partition again."""


class _TooLargeError(Exception):
    """Raised by :class:`_Counted` when a file's content passes the size limit."""


LABELS_FOLDER = "labels"
"""The folder under the landing root that holds the label partitions (``labels/YYYY-MM-DD/HHMM/``)."""


def partition_key(interval: Interval, prefix: str = "") -> str:
    """``YYYY-MM-DD/HHMM`` of the interval's UTC start, e.g. ``2026-11-25/1810``, under ``prefix``
    when one is given (``labels/2026-11-25/1810``)."""
    key = f"{interval.start:%Y-%m-%d}/{interval.start:%H%M}"
    return f"{prefix}/{key}" if prefix else key


def partition(root: str, interval: Interval, prefix: str = "") -> ObjectStoragePath:
    """The folder holding the files of ``interval`` (under the folder ``prefix`` of the root)."""
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(root)
    for part in partition_key(interval, prefix).split("/"):
        folder = folder / part
    return folder


@dataclass(frozen=True)
class LandingFile:
    """One entry of a partition: a file to read, or a symbolic link that stands for itself only."""

    source_file: str  # relative to the landing root
    size: int  # bytes as stored (0 for a link)
    path: Any = None  # an ObjectStoragePath, or None for content given in memory
    local: str | None = None  # the path on this machine, when the landing area is a local folder
    data: bytes | None = None  # the content, for a file given in memory
    link: bool = False

    @property
    def name(self) -> str:
        return self.source_file.rsplit("/", 1)[-1]

    def open(self) -> IO[bytes]:
        """The file's bytes as stored; a local file is opened without following a link."""
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.local is None:
            stream: IO[bytes] = self.path.open("rb")
            return stream
        try:  # O_NONBLOCK: a FIFO put in the file's place does not block the open
            fd = os.open(self.local, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise LandingFileChangedError(
                f"{self.source_file} cannot be opened ({exc}): it was replaced since the folder was listed "
                "(a symbolic link is never followed), or its permissions deny reading"
            ) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LandingFileChangedError(f"{self.source_file} is no longer a regular file")
        return os.fdopen(fd, "rb")


class LandingFileSource:
    """Reads the partition folder of the run's interval under ``root``, a chunk of at most
    ``chunk_records`` records at a time; a file larger than ``max_file_bytes`` (as stored, or
    decompressed) is not read but quarantined as ``file_too_large``. ``fields`` says what kind of
    records the files hold (events by default; :data:`formats.LABELS` with ``prefix`` ``labels``
    for the label partitions ``labels/YYYY-MM-DD/HHMM/``).

    A root that does not exist or cannot be listed is a configuration error; a missing partition
    folder is an interval the source does not have (zero records, and the warehouse keeps what it
    stored for it); an empty folder is an interval that positively has no records."""

    name = "landing"

    def __init__(
        self,
        root: str,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        chunk_records: int = CHUNK_RECORDS,
        fields: formats.Fields = formats.EVENTS,
        prefix: str = "",
    ) -> None:
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.chunk_records = chunk_records
        self.fields = fields
        self.prefix = prefix

    def partition_exists(self, interval: Interval) -> bool:
        from airflow.sdk import ObjectStoragePath

        root = ObjectStoragePath(self.root)
        try:
            listable = root.is_dir()
            folder = partition(self.root, interval, self.prefix)
            found = folder.is_dir()
        except OSError as exc:
            raise SettingsError(
                f"ETLML_LANDING_ROOT={self.root} cannot be listed ({exc}); "
                "point it at the landing area and check its permissions"
            ) from exc
        if not listable:
            raise SettingsError(
                f"ETLML_LANDING_ROOT={self.root} is not a folder that exists; point it at the landing "
                "area (file:///path or s3://bucket/prefix) before running the pipeline"
            )
        if not found:
            log.warning("landing partition %s does not exist: nothing read for %s", folder, interval.key)
        return found

    def manifest(self, interval: Interval) -> dict[str, int]:
        """The partition's files as they are now: file (relative to the root) -> size in bytes as
        stored, -1 for a symbolic link; empty when the partition does not exist."""
        listing = _listing(self.root, interval, self.prefix, quiet=True)
        return {f.source_file: -1 if f.link else f.size for f in listing}

    def ledger_files(
        self, interval: Interval, known: dict[str, FileEntry] | None = None
    ) -> dict[str, FileEntry]:
        """The partition's files as they are now, each with what tells its content apart: the sha256
        of a local file's bytes (reused from ``known`` when its size and modification time are the
        same), the ETag an object store lists; empty when the partition does not exist."""
        # names as the records' provenance gives them: a name that is not UTF-8 is escaped, not lost
        return {
            printable(f.source_file): _file_entry(f, (known or {}).get(printable(f.source_file)))
            for f in _listing(self.root, interval, self.prefix, quiet=True)
        }

    def record_count(self, interval: Interval) -> int:
        """An upper bound of the partition's records, from a first pass that reads no record: the
        lines of each JSONL and CSV file (decompressed), the rows a Parquet footer announces, one for
        a file that is one record (a link, a file too large or in an unknown format)."""
        listing = _listing(self.root, interval, self.prefix, quiet=True)
        return sum(count_records(f, self.max_file_bytes) for f in listing)

    def record_chunks(self, interval: Interval) -> Iterator[pd.DataFrame]:
        """The records of the partition's files in name order, in chunks of at most
        ``chunk_records`` records (small files share a chunk)."""
        files = (
            file_records(f, self.max_file_bytes, self.chunk_records, self.fields)
            for f in _listing(self.root, interval, self.prefix)
        )
        return _rechunked((frame for frames in files for frame in frames), self.chunk_records)

    def records(self, interval: Interval) -> pd.DataFrame:
        """:meth:`record_chunks` in one frame."""
        chunks = list(self.record_chunks(interval))
        return pd.concat(chunks, ignore_index=True) if chunks else self.fields.record.empty()


def _local(path: ObjectStoragePath) -> str | None:
    """Where ``path`` is on this machine, if it is a local path."""
    return str(path.path) if path.protocol in ("file", "local") else None


def _listing(
    root: str, interval: Interval, prefix: str = "", *, quiet: bool = False
) -> Iterator[LandingFile]:
    """The entries of the interval's partition folder to read, in code-point order of their names.
    A partition folder that is itself a symbolic link is one entry, a link (so is one whose day
    folder, or for labels the ``labels`` folder, is a link)."""
    folder = partition(root, interval, prefix)
    key = partition_key(interval, prefix)
    if _local(folder) is None:
        # an object store's client keeps listings for the life of its process: list the store itself,
        # or a file withdrawn since would still be listed (and its read fail, retried to no end)
        folder.fs.invalidate_cache(folder.path)
    if not folder.exists():
        if not quiet:
            log.info("landing partition %s does not exist: zero records for this interval", folder)
        return
    local = _local(folder)
    if local is not None and _linked_folder(local, levels=2 + bool(prefix)):
        yield LandingFile(key, 0, link=True)
        return
    found = 0
    for path in sorted(folder.iterdir(), key=lambda p: str(p.name)):
        entry = _entry(path, f"{key}/{path.name}")
        if entry is None:
            if not quiet:
                log.warning("skipped %s in %s: hidden, marker, folder or not a file", path.name, folder)
            continue
        found += 1
        yield entry
    if not found and not quiet:
        log.info("landing partition %s holds no files: zero records for this interval", folder)


def _linked_folder(local: str, levels: int = 2) -> bool:
    """Whether the partition folder or one of its ``levels - 1`` parents under the root (the day
    folder; for labels also ``labels``) is a symbolic link."""
    folder = os.path.normpath(local)
    for _ in range(levels):
        if os.path.islink(folder):
            return True
        folder = os.path.dirname(folder)
    return False


def _entry(path: ObjectStoragePath, source_file: str) -> LandingFile | None:
    if str(path.name).startswith((".", "_")):
        return None
    local = _local(path)
    if local is None:
        return LandingFile(source_file, int(path.stat().st_size), path=path) if path.is_file() else None
    status = os.lstat(local)
    if stat.S_ISLNK(status.st_mode):
        return LandingFile(source_file, 0, link=True)
    if not stat.S_ISREG(status.st_mode):
        return None
    return LandingFile(source_file, status.st_size, path=path, local=local)


def _file_entry(file: LandingFile, known: FileEntry | None) -> FileEntry:
    if file.link:
        return FileEntry(-1)
    if file.local is None:
        info = file.path.fs.info(file.path.path)
        etag = info.get("ETag") or info.get("etag")
        return FileEntry(file.size, etag=None if etag is None else str(etag).strip('"'))
    try:
        mtime = os.lstat(file.local).st_mtime_ns
        if known is not None and known.sha256 and (known.size, known.mtime_ns) == (file.size, mtime):
            return known
        with file.open() as stored:
            digest = hashlib.file_digest(stored, "sha256").hexdigest()  # type: ignore[arg-type]
    except (OSError, LandingFileChangedError):
        return FileEntry(file.size, mtime_ns=None)  # unreadable: the read quarantines it, saying why
    return FileEntry(file.size, sha256=digest, mtime_ns=mtime)


def _rechunked(frames: Iterable[pd.DataFrame], size: int) -> Iterator[pd.DataFrame]:
    """Frames of at most ``size`` rows each, joined until the next would pass ``size``."""
    pending: list[pd.DataFrame] = []
    rows = 0
    for frame in frames:
        if not len(frame):
            continue
        if pending and rows + len(frame) > size:
            yield _joined(pending)
            pending, rows = [], 0
        pending.append(frame)
        rows += len(frame)
    if pending:
        yield _joined(pending)


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def read_file(
    source_file: str,
    data: bytes,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    fields: formats.Fields = formats.EVENTS,
) -> pd.DataFrame:
    """The records of one file named ``source_file`` (its format from its extension) holding ``data``."""
    file = LandingFile(source_file, len(data), data=data)
    frames = list(file_records(file, max_file_bytes, chunk_records=max(1, len(data)), fields=fields))
    return pd.concat(frames, ignore_index=True) if frames else _frame(source_file, [], fields)


def _extension(name: str) -> str | None:
    lowered = name.lower()
    return next((e for e in sorted(EXTENSIONS, key=len, reverse=True) if lowered.endswith(e)), None)


def _frame(source_file: str, rows: list[formats.Row], fields: formats.Fields) -> pd.DataFrame:
    layout = fields.record
    columns = [c for c in layout.names if c != "source_file"]
    frame = pd.DataFrame.from_records(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    frame.insert(0, "source_file", printable(source_file))
    return frame.astype(layout.dtypes())


class _Counted(io.RawIOBase):
    """A file's content that counts the bytes read from it and stops past ``limit``."""

    def __init__(self, content: IO[bytes], limit: int) -> None:
        self._content = content
        self._limit = limit
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._content.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes += len(data)
        if self.bytes > self._limit:
            raise _TooLargeError(f"more than {self._limit} bytes")
        return len(data)


def _content(file: LandingFile, stored: IO[bytes], limit: int) -> tuple[IO[bytes], _Counted]:
    """The content of a JSONL or CSV file (decompressed if gzip), read through a counter."""
    inflated: Any = gzip.GzipFile(fileobj=stored, mode="rb") if file.name.lower().endswith(".gz") else stored
    counted = _Counted(inflated, limit)
    return io.BufferedReader(counted, buffer_size=_BLOCK_BYTES), counted


def _refused(file: LandingFile, limit: int) -> tuple[str, str] | None:
    """Why ``file`` is one whole-file record without reading it: a link, an unknown format, too large."""
    if file.link:
        return "unsupported_file", _LINK
    if _extension(file.name) is None:
        return "unsupported_file", f"unsupported extension; expected one of {EXTENSIONS}"
    if file.size > limit:
        return (
            "file_too_large",
            f"{file.size} bytes as stored, more than ETLML_MAX_FILE_BYTES={limit}: {_SPLIT}",
        )
    return None


_SPLIT = "split it into smaller files, or raise the limit"


def _too_large_inflated(limit: int) -> tuple[str, str]:
    detail = f"more than ETLML_MAX_FILE_BYTES={limit} bytes decompressed (read up to there): {_SPLIT}"
    return "file_too_large", detail


def _unreadable(file: LandingFile, limit: int) -> tuple[str, str] | None:
    """A first pass over what only reading the whole file tells: a gzip file that is broken or
    inflates past ``limit``, a Parquet file that is too large uncompressed or cannot be read. (A
    JSONL or CSV file is read once: what makes it unreadable shows before its first record.)"""
    extension = str(_extension(file.name))
    try:
        if extension == ".parquet":
            with file.open() as stored:
                if formats.parquet_inflated_bytes(stored) > limit:
                    return _too_large_inflated(limit)
                columnar.parquet_readable(stored)
        elif extension.endswith(".gz"):
            _lines(file, limit)
    except formats.UnreadableFileError as exc:
        return "unparseable_file", str(exc)
    except _TooLargeError:
        return _too_large_inflated(limit)
    except _GZIP_ERRORS as exc:
        return "unparseable_file", f"not gzip data: {exc}"
    return None


def _lines(file: LandingFile, limit: int) -> int:
    """The lines of a JSONL or CSV file's content, counted a block at a time (CR, LF and CRLF end a
    line of CSV, LF one of JSONL)."""
    universal = ".csv" in file.name.lower()
    lines, last, after_cr = 0, b"", False
    with file.open() as stored:
        content, _ = _content(file, stored, limit)
        while block := content.read(_BLOCK_BYTES):
            lines += block.count(b"\n")
            if universal:
                lines += block.count(b"\r") - block.count(b"\r\n") - (after_cr and block[:1] == b"\n")
                after_cr = block[-1:] == b"\r"
            last = block[-1:]
    return lines + (last not in (b"", b"\n", b"\r"))


def count_records(file: LandingFile, limit: int) -> int:
    """An upper bound of the records of ``file``, without reading any."""
    extension = _extension(file.name)
    if extension is None or _refused(file, limit) is not None:
        return 1
    try:
        if extension == ".parquet":
            with file.open() as stored:
                return max(1, formats.parquet_row_count(stored))
        lines = _lines(file, limit)
    except (_TooLargeError, *_GZIP_ERRORS):
        return 1
    return max(0, lines - 1) if ".csv" in extension else lines


def file_records(
    file: LandingFile, limit: int, chunk_records: int, fields: formats.Fields = formats.EVENTS
) -> Iterator[pd.DataFrame]:
    """The records of one file in frames of at most ``chunk_records``; one record with
    ``row_number`` 0 for a file that is a link, too large, of unknown format or unreadable."""
    problem = _refused(file, limit) or _unreadable(file, limit)
    if problem is not None:
        log.warning("quarantined %s as a whole: %s, %s", file.name, *problem)
        yield _whole_file(file, *problem, fields)
        return
    yield from _read(file, limit, chunk_records, fields)


def _read(
    file: LandingFile, limit: int, chunk_records: int, fields: formats.Fields
) -> Iterator[pd.DataFrame]:
    extension = str(_extension(file.name))
    reader = columnar.READERS[extension.removesuffix(".gz")]
    pending: list[pa.Table] = []
    held = read = problems = 0
    counted = None
    try:
        with file.open() as stored:
            content = stored
            if extension != ".parquet":
                content, counted = _content(file, stored, limit)
            for table in reader(content, fields):
                pending.append(table)
                held += table.num_rows
                while held >= chunk_records:
                    joined = pa.concat_tables(pending)
                    rest = joined.slice(chunk_records)
                    pending, held = [rest], rest.num_rows
                    frame = _table_frame(file.source_file, joined.slice(0, chunk_records), fields)
                    read, problems = read + len(frame), problems + int(frame["problem"].notna().sum())
                    yield frame
    except formats.UnreadableFileError as exc:
        if read:
            raise LandingFileChangedError(
                f"{file.source_file} became unreadable after {read} records: {exc}"
            ) from exc
        log.warning("quarantined %s as a whole: unparseable_file, %s", file.name, exc)
        yield _whole_file(file, "unparseable_file", str(exc), fields)
        return
    except (_TooLargeError, *_GZIP_ERRORS) as exc:
        raise LandingFileChangedError(
            f"{file.source_file} changed while it was read, or could not be read to its end ({exc}); "
            "the task retries"
        ) from exc
    if held:
        frame = _table_frame(file.source_file, pa.concat_tables(pending), fields)
        read, problems = read + len(frame), problems + int(frame["problem"].notna().sum())
        yield frame
    _log_read(file, read, problems, counted)


def _table_frame(source_file: str, table: pa.Table, fields: formats.Fields) -> pd.DataFrame:
    """Records read in a table as a frame of :data:`etlml.records.RECORD` (or the labels'); their
    raw bytes stay in Arrow (no Python object per record), as the shard files store them."""
    frame = table.to_pandas(types_mapper=_KINDS.get)
    frame.insert(0, "source_file", printable(source_file))
    typed: pd.DataFrame = frame.astype({k: v for k, v in fields.record.dtypes().items() if k != "raw"})
    return typed


_KINDS = {
    pa.string(): pd.StringDtype(),
    pa.large_string(): pd.StringDtype(),
    pa.large_binary(): pd.ArrowDtype(pa.large_binary()),
}


def _log_read(file: LandingFile, read: int, problems: int, counted: _Counted | None) -> None:
    if read:
        log.info("read %s: %d records, %d unreadable", file.name, read, problems)
        return
    inflated = (
        f", {counted.bytes} bytes decompressed" if counted and file.name.lower().endswith(".gz") else ""
    )
    log.warning(
        "%s holds no records: %d bytes as stored%s, blank lines or a header only; nothing loaded from it",
        file.name,
        file.size,
        inflated,
    )


def _whole_file(file: LandingFile, problem: str, detail: str, fields: formats.Fields) -> pd.DataFrame:
    """The one record of a file that is not read: its first bytes as stored (nothing for a link)."""
    if file.link:
        head, message = b"", detail
    else:
        with file.open() as stored:
            head = stored.read(RAW_HEAD_BYTES)
        kept = "the whole file" if file.size <= RAW_HEAD_BYTES else f"its first {RAW_HEAD_BYTES} bytes"
        message = f"{detail} ({file.size} bytes; the raw value is {kept} as found)"
    row = (WHOLE_FILE, head, *fields.none, problem, message, None)
    return _frame(file.source_file, [row], fields)
