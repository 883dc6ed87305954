"""Landing files: every file of a data interval's partition folder, read into records with provenance.

The partition of an interval is ``<landing root>/YYYY-MM-DD/HHMM/`` of its UTC start, read through
``ObjectStoragePath`` (``file://``, ``s3://``, ...). Formats go by extension: ``.jsonl``, ``.csv``,
``.parquet``, and gzip-compressed ``.jsonl.gz`` and ``.csv.gz``. Reading never rejects anything on
its own account except what it cannot read (a whole file, an undecodable line, a line that is not a
JSON object, a CSV row of the wrong width); every value is passed on as text for ``etlml.ingest.contract``
to judge. Names starting with ``.`` or ``_`` (uploads in progress, ``_SUCCESS`` markers) and
sub-folders are skipped and logged.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import zlib
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etlml.errors import SettingsError
from etlml.ingest.contract import excerpt, printable
from etlml.interval import Interval
from etlml.records import EVENT, RECORD

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

EXTENSIONS = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet")
WHOLE_FILE = 0  # the row_number of a record that stands for a whole file
_BOM = b"\xef\xbb\xbf"
_CSV_FIELD_LIMIT = 2**31 - 1  # the csv module's default of 128 KiB would reject a huge field unread
# One record: row_number, raw, the event fields as text, problem, problem_detail, extra_fields
Row = tuple[Any, ...]


class UnreadableFileError(ValueError):
    """A whole file cannot be read; it becomes one rejected record."""


def partition_key(interval: Interval) -> str:
    """``YYYY-MM-DD/HHMM`` of the interval's UTC start, e.g. ``2026-11-25/1810``."""
    return f"{interval.start:%Y-%m-%d}/{interval.start:%H%M}"


def partition(root: str, interval: Interval) -> ObjectStoragePath:
    """The folder holding the files of ``interval``."""
    from airflow.sdk import ObjectStoragePath

    day, minute = partition_key(interval).split("/")
    return ObjectStoragePath(root) / day / minute


class LandingFileSource:
    """Reads the partition folder of the run's interval under ``root``.

    A root that does not exist or cannot be listed is a configuration error; a missing partition
    folder is an interval the source does not have (zero records, and the warehouse keeps what it
    stored for it); an empty folder is an interval that positively has no records."""

    name = "landing"

    def __init__(self, root: str) -> None:
        self.root = root

    def partition_exists(self, interval: Interval) -> bool:
        from airflow.sdk import ObjectStoragePath

        root = ObjectStoragePath(self.root)
        try:
            listable = root.is_dir()
            folder = partition(self.root, interval)
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

    def records(self, interval: Interval) -> pd.DataFrame:
        folder = partition(self.root, interval)
        if not folder.exists():
            log.info("landing partition %s does not exist: zero records for this interval", folder)
            return RECORD.empty()
        frames = []
        for path in sorted(folder.iterdir(), key=lambda p: str(p.name)):
            name = str(path.name)
            if name.startswith((".", "_")) or not path.is_file():
                log.warning("skipped %s in %s: hidden, marker or not a file", name, folder)
                continue
            frame = read_file(f"{partition_key(interval)}/{name}", path.read_bytes())
            problems = int(frame["problem"].notna().sum())
            log.info("read %s: %d records, %d unreadable", name, len(frame), problems)
            frames.append(frame)
        if not frames:
            log.info("landing partition %s holds no files: zero records for this interval", folder)
            return RECORD.empty()
        return pd.concat(frames, ignore_index=True)


def read_file(source_file: str, data: bytes) -> pd.DataFrame:
    """The records of one file named ``source_file`` (its format from its extension) holding ``data``."""
    name = source_file.rsplit("/", 1)[-1].lower()
    extension = next((e for e in sorted(EXTENSIONS, key=len, reverse=True) if name.endswith(e)), None)
    if extension is None:
        return _whole_file(
            source_file, data, "unsupported_file", f"unsupported extension; expected one of {EXTENSIONS}"
        )
    readers: dict[str, Callable[[bytes], list[Row]]] = {
        ".jsonl": _jsonl,
        ".csv": _csv,
        ".parquet": _parquet,
    }
    try:
        content = _gunzip(data) if extension.endswith(".gz") else data
        rows = readers[extension.removesuffix(".gz")](content)
    except UnreadableFileError as exc:
        return _whole_file(source_file, data, "unparseable_file", str(exc))
    return _frame(source_file, rows)


def _frame(source_file: str, rows: list[Row]) -> pd.DataFrame:
    columns = [c for c in RECORD.names if c != "source_file"]
    frame = pd.DataFrame.from_records(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    frame.insert(0, "source_file", printable(source_file))
    return frame.astype(RECORD.dtypes())


def _whole_file(source_file: str, data: bytes, problem: str, detail: str) -> pd.DataFrame:
    message = f"{detail} ({len(data)} bytes; the raw value is the whole file as found)"
    return _frame(source_file, [(WHOLE_FILE, data, *([None] * len(EVENT.names)), problem, message, None)])


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableFileError(f"not gzip data: {exc}") from exc


def _problem(number: int, raw: bytes, problem: str, detail: str) -> Row:
    return (number, raw, *([None] * len(EVENT.names)), problem, detail, None)


def _extras(names: Any) -> str | None:
    unknown = sorted(str(n) for n in names if n not in EVENT.names)
    return json.dumps(unknown) if unknown else None  # ASCII-escaped: safe for any field name


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: object) -> str | None:
    """A typed value (JSON, Parquet) as the text the contract parses; wrong types fail its checks."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float | Decimal | np.number):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return json.dumps(value, default=str)


def _from_mapping(number: int, raw: bytes, record: Mapping[Any, Any]) -> Row:
    """One JSON object or Parquet row as a record."""
    event_id = record.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        detail = f"event_id must be a string, not {type(event_id).__name__}: {excerpt(event_id)}"
        return _problem(number, raw, "invalid_event_id", detail)
    values = [_text(record.get(name)) for name in EVENT.names]
    broken = [n for n, v in zip(EVENT.names, values, strict=True) if v is not None and not _encodable(v)]
    if broken:
        return _problem(
            number, raw, "invalid_encoding", f"{', '.join(broken)}: escaped lone UTF-16 surrogate"
        )
    return (number, raw, *values, None, None, _extras(record.keys()))


def _json_int(text: str) -> int | float:
    """A JSON integer; one too long for Python's int parsing limit as a float (which is infinite)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _jsonl(content: bytes) -> list[Row]:
    """One record per non-blank line; ``row_number`` is the line number (from 1)."""
    rows = []
    for number, line in enumerate(content.removeprefix(_BOM).split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line.decode("utf-8"), parse_int=_json_int)
        except UnicodeDecodeError as exc:
            rows.append(_problem(number, line, "invalid_encoding", f"not valid UTF-8 at byte {exc.start}"))
            continue
        except (ValueError, RecursionError) as exc:
            rows.append(_problem(number, line, "malformed_record", f"not valid JSON: {excerpt(str(exc))}"))
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            rows.append(_problem(number, line, "malformed_record", f"a JSON {kind}, not an object"))
            continue
        rows.append(_from_mapping(number, line, value))
    return rows


class _Lines:
    """The lines handed to ``csv.reader``, kept until the record they belong to is complete."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.pending: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.pending.append(line)
        return line

    def take(self) -> str:
        """The text of the record just read, without its final line break."""
        text = "".join(self.pending)
        self.pending.clear()
        return text.removesuffix("\n").removesuffix("\r")


def _csv(content: bytes) -> list[Row]:
    """A header row naming the fields, then one record per row; ``row_number`` is the line where the
    row starts (the header is line 1)."""
    text = content.removeprefix(_BOM).decode("utf-8", "surrogateescape")
    lines = _Lines(text)
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(lines, strict=False)
    try:
        header = _csv_header(reader, lines)
        if header is None:
            return []
        extras = _extras(header)
        rows, last_line = [], reader.line_num
        for fields in reader:
            number, last_line = last_line + 1, reader.line_num
            record = lines.take()
            if not fields:
                continue  # a blank line
            raw = record.encode("utf-8", "surrogateescape")
            if not _encodable(record):
                rows.append(_problem(number, raw, "invalid_encoding", "not valid UTF-8"))
            elif len(fields) != len(header):
                detail = f"{len(fields)} fields where the header has {len(header)}"
                rows.append(_problem(number, raw, "malformed_record", detail))
            else:
                named = dict(zip(header, fields, strict=True))
                rows.append((number, raw, *(named.get(c) for c in EVENT.names), None, None, extras))
    except csv.Error as exc:
        raise UnreadableFileError(f"CSV cannot be parsed: {exc}") from exc
    return rows


def _csv_header(reader: Any, lines: _Lines) -> list[str] | None:
    for header in reader:
        lines.take()
        if not header:
            continue
        if not all(map(_encodable, header)):
            raise UnreadableFileError("the CSV header is not valid UTF-8")
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise UnreadableFileError(f"the CSV header names {excerpt(', '.join(repeated))} more than once")
        if not {"event_id", "ts_utc"} <= set(header):
            raise UnreadableFileError(
                f"the CSV header must name event_id and ts_utc; its first line is {excerpt(','.join(header))}"
            )
        return list(header)
    return None


def _parquet(content: bytes) -> list[Row]:
    """One record per row; ``row_number`` counts rows from 1; ``raw`` is the row as JSON."""
    try:
        table = pq.read_table(io.BytesIO(content))
        records = table.to_pylist()
    except (pa.ArrowException, OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {excerpt(str(exc))}") from exc
    rows = []
    for number, record in enumerate(records, start=1):
        raw = json.dumps(record, default=str, ensure_ascii=False).encode("utf-8", "backslashreplace")
        rows.append(_from_mapping(number, raw, record))
    return rows
