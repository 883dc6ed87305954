"""The formats of landing files record by record: what one record of each format becomes, and the
readers of a whole CSV or Parquet file one record at a time (:mod:`etlml.ingest.columnar` reads
files a block at a time, and reads the blocks that are not plain through these).

Each record is a :data:`Row`: ``row_number``, ``raw``, the fields of its kind (:class:`Fields`: an
event's or a label's) as text, ``problem``, ``problem_detail``, ``extra_fields``. Readers reject
nothing on their own account except what they cannot read: an undecodable line, a line that is not
a JSON object, a CSV row of the wrong width (a record with a ``problem``), or a whole file
(:class:`UnreadableFileError`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from etlml.ingest.contract import excerpt
from etlml.records import EVENT, LABEL, RECORD, Layout, record_layout

Row = tuple[Any, ...]
BOM = b"\xef\xbb\xbf"
CSV_FIELD_LIMIT = 2**31 - 1  # the csv module's default of 128 KiB would reject a huge field unread
PARQUET_BATCH_ROWS = 65_536
_PARQUET_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, NotImplementedError, OverflowError)


class UnreadableFileError(ValueError):
    """A whole file cannot be read; it becomes one rejected record."""


@dataclass(frozen=True)
class Fields:
    """The fields of one kind of record, and the fields a CSV header must name."""

    layout: Layout
    header: tuple[str, ...]
    texts: tuple[str, ...] = ()  # fields whose values are strings (a JSON number there is no plain block)
    names: tuple[str, ...] = field(init=False)
    known: frozenset[str] = field(init=False)
    none: tuple[None, ...] = field(init=False)

    def __post_init__(self) -> None:
        # a Layout's names are built on each access: kept once here, not per record
        object.__setattr__(self, "names", self.layout.names)
        object.__setattr__(self, "known", frozenset(self.layout.names))
        object.__setattr__(self, "none", (None,) * len(self.layout.names))

    @property
    def record(self) -> Layout:
        """The layout of the records read (:data:`etlml.records.RECORD` for events)."""
        return RECORD if self.layout == EVENT else record_layout(self.layout)


EVENTS = Fields(EVENT, ("event_id", "ts_utc"), texts=("event_id", "ts_utc"))
"""Events: ``event_id``, ``ts_utc``, ``f1``, ``f2``, ``f3``; a CSV header names at least the first two."""
LABELS = Fields(LABEL, ("event_id", "y_true", "observed_at"), texts=("event_id", "observed_at"))
"""Labels: ``event_id``, ``y_true``, ``observed_at``; a CSV header names all three."""


def _problem(number: int, raw: bytes, problem: str, detail: str, fields: Fields) -> Row:
    return (number, raw, *fields.none, problem, detail, None)


def unknown_fields(names: Any, fields: Fields) -> str | None:
    unknown = sorted(str(n) for n in names if n not in fields.known)
    return json.dumps(unknown) if unknown else None  # ASCII-escaped: safe for any field name


def _encodable(text: str) -> bool:
    if text.isascii():  # the common case, and much faster to tell
        return True
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


def _from_mapping(number: int, raw: bytes, record: Mapping[Any, Any], fields: Fields) -> Row:
    """One JSON object or Parquet row as a record."""
    event_id = record.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        detail = f"event_id must be a string, not {type(event_id).__name__}: {excerpt(event_id)}"
        return _problem(number, raw, "invalid_event_id", detail, fields)
    values = [_text(record.get(name)) for name in fields.names]
    broken = [n for n, v in zip(fields.names, values, strict=True) if v is not None and not _encodable(v)]
    if broken:
        return _problem(
            number, raw, "invalid_encoding", f"{', '.join(broken)}: escaped lone UTF-16 surrogate", fields
        )
    return (number, raw, *values, None, None, unknown_fields(record.keys(), fields))


def _json_int(text: str) -> int | float:
    """A JSON integer; one too long for Python's int parsing limit as a float (which is infinite)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


_JSON = json.JSONDecoder(parse_int=_json_int)


def json_line(number: int, line: bytes, fields: Fields) -> Row:
    """One line of a JSONL file (without its line feed) as a record."""
    try:
        value = _JSON.decode(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return _problem(number, line, "invalid_encoding", f"not valid UTF-8 at byte {exc.start}", fields)
    except (ValueError, RecursionError) as exc:
        return _problem(number, line, "malformed_record", f"not valid JSON: {excerpt(str(exc))}", fields)
    if not isinstance(value, dict):
        detail = f"a JSON {type(value).__name__}, not an object"
        return _problem(number, line, "malformed_record", detail, fields)
    return _from_mapping(number, line, value, fields)


class _Lines:
    """The lines handed to ``csv.reader``, kept until the record they belong to is complete."""

    def __init__(self, text: IO[str]) -> None:
        self._lines = iter(text)
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


def csv_records(content: IO[bytes], fields: Fields = EVENTS) -> Iterator[Row]:
    """A header row naming the fields, then one record per row; ``row_number`` is the line where the
    row starts (the header is line 1). Lines end at CR, LF or CRLF, as in the csv module."""
    text = io.TextIOWrapper(content, encoding="utf-8-sig", errors="surrogateescape", newline="")
    lines = _Lines(text)
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.reader(lines, strict=False)
    try:
        header = _csv_header(reader, lines, fields)
        if header is None:
            return
        extras = unknown_fields(header, fields)
        last_line = reader.line_num
        for values in reader:
            number, last_line = last_line + 1, reader.line_num
            record = lines.take()
            if values:  # else a blank line
                yield csv_row(number, record, values, header, extras=extras, fields=fields)
    except csv.Error as exc:
        raise UnreadableFileError(f"CSV cannot be parsed: {exc}") from exc


def csv_row(
    number: int, record: str, values: list[str], header: list[str], *, extras: str | None, fields: Fields
) -> Row:
    raw = record.encode("utf-8", "surrogateescape")
    if not _encodable(record):
        return _problem(number, raw, "invalid_encoding", "not valid UTF-8", fields)
    if len(values) != len(header):
        detail = f"{len(values)} fields where the header has {len(header)}"
        return _problem(number, raw, "malformed_record", detail, fields)
    named = dict(zip(header, values, strict=True))
    return (number, raw, *(named.get(c) for c in fields.names), None, None, extras)


def _csv_header(reader: Any, lines: _Lines, fields: Fields) -> list[str] | None:
    for header in reader:
        lines.take()
        if not header:
            continue
        check_csv_header(header, fields)
        return list(header)
    return None


def check_csv_header(header: list[str], fields: Fields) -> None:
    """Raise :class:`UnreadableFileError` if ``header`` cannot head a file of ``fields``."""
    if not all(map(_encodable, header)):
        raise UnreadableFileError("the CSV header is not valid UTF-8")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise UnreadableFileError(f"the CSV header names {excerpt(', '.join(repeated))} more than once")
    if not set(fields.header) <= set(header):
        raise UnreadableFileError(
            f"the CSV header must name {', '.join(fields.header[:-1])} and {fields.header[-1]}; "
            f"its first line is {excerpt(','.join(header))}"
        )


def parquet_batches(content: IO[bytes]) -> Iterator[pa.RecordBatch]:
    """The rows of a Parquet file in batches of :data:`PARQUET_BATCH_ROWS`."""
    try:
        parquet = pq.ParquetFile(content)
        yield from parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    except _PARQUET_ERRORS as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {excerpt(str(exc))}") from exc


def parquet_values(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """A batch of Parquet rows as Python values."""
    try:
        values: list[dict[str, Any]] = batch.to_pylist()
    except _PARQUET_ERRORS as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {excerpt(str(exc))}") from exc
    return values


def parquet_rows(content: IO[bytes]) -> Iterator[list[dict[str, Any]]]:
    """The rows of a Parquet file as Python values, :data:`PARQUET_BATCH_ROWS` at a time."""
    for batch in parquet_batches(content):
        yield parquet_values(batch)


def parquet_inflated_bytes(content: IO[bytes]) -> int:
    """The size of a Parquet file's data uncompressed, from its footer."""
    try:
        metadata = pq.ParquetFile(content).metadata
    except _PARQUET_ERRORS as exc:
        raise UnreadableFileError(f"not a readable Parquet file: {excerpt(str(exc))}") from exc
    return sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))


def parquet_row_count(content: IO[bytes]) -> int:
    """The rows a Parquet file's footer announces (0 if it has no readable footer)."""
    try:
        return int(pq.ParquetFile(content).metadata.num_rows)
    except _PARQUET_ERRORS:
        return 0


def parquet(content: IO[bytes], fields: Fields = EVENTS) -> Iterator[Row]:
    """One record per row; ``row_number`` counts rows from 1; ``raw`` is the row as JSON."""
    number = 1
    for rows in parquet_rows(content):
        yield from parquet_batch(rows, number, fields)
        number += len(rows)


def parquet_batch(rows: list[dict[str, Any]], first_row: int, fields: Fields = EVENTS) -> Iterator[Row]:
    """The records of Parquet rows (Python values), the first numbered ``first_row``."""
    for number, record in enumerate(rows, start=first_row):
        raw = json.dumps(record, default=str, ensure_ascii=False).encode("utf-8", "backslashreplace")
        yield _from_mapping(number, raw, record, fields)
