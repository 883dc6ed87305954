"""Landing files read a block at a time into Arrow tables of records, with the verdicts of the
record-at-a-time readers of :mod:`etlml.ingest.formats`.

A file's content is cut into blocks of about :data:`BLOCK_BYTES` that end at a line feed. A block is
parsed the columnar way (Arrow's CSV or JSON reader, the raw bytes of its records sliced from the
block by their line offsets) only when it is *plain*, so that every line is exactly one record and
Arrow reads each record as the record-at-a-time reader does:

- CSV: valid UTF-8, no quote character, no CR but CRLF's, no NUL, no blank line, and as many fields on every
  line as the header names (a header that is not plain sends the whole file the old way);
- JSONL: valid UTF-8, no escaped surrogate, no blank line, every line ``{...}``, and Arrow reads
  one object per line with only known fields, strings where strings are expected, and numbers,
  booleans or nulls elsewhere.

Any other block is read record by record, by the readers of :mod:`etlml.ingest.formats`; for CSV
the old reader goes on into the next blocks until a record ends at the end of a block (a quoted
field may span lines, and blocks), then the next block is tried the columnar way again.

Every table has the columns ``row_number``, ``raw``, the fields of :class:`formats.Fields`,
``problem``, ``problem_detail`` and ``extra_fields`` (:data:`etlml.records.RECORD` without
``source_file``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Generator, Iterable, Iterator
from itertools import chain
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from etlml.ingest import formats

BLOCK_BYTES = 4 << 20
PIECE_ROWS = 10_000  # rows of a table of records read the old way
_LF, _CR, _COMMA, _OPEN, _CLOSE = ord("\n"), ord("\r"), ord(","), ord("{"), ord("}")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_TEXT_TYPES = (pa.string(), pa.large_string())
_JSON_SCALARS = (pa.null(), pa.bool_(), pa.int64(), pa.float64(), *_TEXT_TYPES)


def schema(fields: formats.Fields) -> pa.Schema:
    """The columns of every table of records of ``fields``."""
    return pa.schema(
        [
            ("row_number", pa.int64()),
            ("raw", pa.large_binary()),
            *((name, pa.string()) for name in fields.names),
            ("problem", pa.string()),
            ("problem_detail", pa.string()),
            ("extra_fields", pa.string()),
        ]
    )


def rows_table(rows: list[formats.Row], fields: formats.Fields) -> pa.Table:
    """Records read the old way (:data:`formats.Row`) as a table."""
    kinds = schema(fields)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(kinds)
    return pa.table([pa.array(c, type=f.type) for c, f in zip(columns, kinds, strict=True)], schema=kinds)


def tables_of(rows: Iterable[formats.Row], fields: formats.Fields) -> Iterator[pa.Table]:
    """Records read the old way, :data:`PIECE_ROWS` to a table."""
    piece: list[formats.Row] = []
    for row in rows:
        piece.append(row)
        if len(piece) == PIECE_ROWS:
            yield rows_table(piece, fields)
            piece = []
    if piece:
        yield rows_table(piece, fields)


def blocks(content: IO[bytes], size: int | None = None) -> Iterator[bytes]:
    """The content in blocks of about ``size`` bytes (:data:`BLOCK_BYTES`), each ending at a line feed
    but the last (a line longer than ``size`` is one block)."""
    size = size or BLOCK_BYTES
    pending = bytearray()
    while data := content.read(size):
        start = len(pending)
        pending += data
        cut = pending.rfind(b"\n", start) + 1
        if cut:
            yield bytes(pending[:cut])
            del pending[:cut]
    if pending:
        yield bytes(pending)


class _Replayed(io.RawIOBase):
    """Blocks already read followed by the rest, as one stream again."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def _replayed(chunks: Iterator[bytes]) -> IO[bytes]:
    return io.BufferedReader(_Replayed(chunks), buffer_size=1 << 20)


def _utf8(block: bytes) -> bool:
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Lines:
    """Where the lines of a plain block start and end (a last line may lack its line feed); with
    ``crlf``, a CR before a line feed ends the line's text too (CSV's CRLF)."""

    def __init__(self, block: bytes, *, crlf: bool = False) -> None:
        self.bytes = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(self.bytes == _LF)
        fed = np.ones(len(ends), dtype=np.int64)  # a line feed ends the line
        if block[-1:] != b"\n":
            ends = np.append(ends, len(block))
            fed = np.append(fed, 0)
        self.ends = ends
        self.starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
        self.count = len(ends)
        cr = np.zeros(self.count, dtype=np.int64)
        if crlf:
            before = np.maximum(ends - 1, 0)
            cr = ((fed == 1) & (ends > self.starts) & (self.bytes[before] == _CR)).astype(np.int64)
        self.text_ends = ends - cr
        self._cut = fed + cr  # the bytes that end each line
        self._crlf = crlf

    @property
    def blank(self) -> bool:
        return bool(np.any(self.text_ends == self.starts))

    def raw(self, block: bytes) -> pa.Array:
        """Each line's bytes without what ends it, sliced from the block."""
        removed = np.concatenate(([0], np.cumsum(self._cut)[:-1])).astype(np.int64)  # before each line
        offsets = np.append(self.starts - removed, self.text_ends[-1] - removed[-1]).astype(np.int64)
        data = block.replace(b"\r\n", b"") if self._crlf else block
        data = data.replace(b"\n", b"")
        return pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), self.count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )


def _table(
    lines: _Lines,
    block: bytes,
    first_line: int,
    *,
    values: dict[str, pa.Array],
    fields: formats.Fields,
    extras: str | None,
) -> pa.Table:
    n = lines.count
    none = pa.nulls(n, pa.string())
    columns = {
        "row_number": pa.array(np.arange(first_line, first_line + n, dtype=np.int64)),
        "raw": lines.raw(block),
        **{name: values.get(name, none) for name in fields.names},
        "problem": none,
        "problem_detail": none,
        "extra_fields": none if extras is None else pa.repeat(pa.scalar(extras, pa.string()), n),
    }
    return pa.table(columns, schema=schema(fields))


# --- CSV -------------------------------------------------------------------------------------


class _CsvFile:
    """The header of a CSV file whose first line is plain, and what its records share."""

    def __init__(self, header: list[str], fields: formats.Fields) -> None:
        self.header = header
        self.extras = formats.unknown_fields(header, fields)
        self.fields = fields
        self.names = [f"c{i}" for i in range(len(header))]
        self.picked = {name: self.names[header.index(name)] for name in fields.names if name in header}

    def fast(self, block: bytes, first_line: int) -> tuple[pa.Table, int] | None:
        """The block's records and lines, if it is plain."""
        crs = block.count(b"\r")
        if b'"' in block or b"\x00" in block or (crs and crs != block.count(b"\r\n")):
            return None  # a quote, NUL or CR other than CRLF's
        if not _utf8(block):
            return None
        lines = _Lines(block, crlf=True)
        if lines.blank:
            return None
        commas = np.flatnonzero(lines.bytes == _COMMA)
        per_line = np.searchsorted(commas, lines.ends) - np.searchsorted(commas, lines.starts)
        if np.any(per_line != len(self.header) - 1):
            return None
        parsed = pa_csv.read_csv(
            pa.py_buffer(block),
            read_options=pa_csv.ReadOptions(column_names=self.names, block_size=len(block) + 1),
            parse_options=pa_csv.ParseOptions(
                quote_char=False,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(self.names, pa.string()),
                include_columns=list(self.picked.values()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
                check_utf8=False,
            ),
        )
        if parsed.num_rows != lines.count:
            return None
        values = {name: parsed[column].combine_chunks() for name, column in self.picked.items()}
        return _table(
            lines, block, first_line, values=values, fields=self.fields, extras=self.extras
        ), lines.count


class _StretchLines:
    """The lines of a block (CR, LF and CRLF end a line, as for ``csv.reader``), and of the next
    blocks while a record is incomplete; :attr:`at_end` once a record ended with the block's end."""

    def __init__(self, block: bytes, rest: Iterator[bytes]) -> None:
        self._rest = rest
        self._lines: list[str] = []
        self._at = 0
        self.pending: list[str] = []
        self._load(block)

    def _load(self, block: bytes) -> None:
        text = block.decode("utf-8", "surrogateescape")
        self._lines, self._at = io.StringIO(text, newline="").readlines(), 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while self._at == len(self._lines):
            self._load(next(self._rest))  # StopIteration at the end of the file ends the reader too
        line = self._lines[self._at]
        self._at += 1
        self.pending.append(line)
        return line

    @property
    def at_end(self) -> bool:
        return self._at == len(self._lines) and not self.pending

    def take(self) -> str:
        text = "".join(self.pending)
        self.pending.clear()
        return text.removesuffix("\n").removesuffix("\r")


def _csv_stretch(
    block: bytes, rest: Iterator[bytes], first_line: int, file: _CsvFile
) -> Generator[pa.Table, None, int]:
    """Records the old way from ``block`` on, until one ends with a block; the lines read."""
    lines = _StretchLines(block, rest)
    reader = csv.reader(lines, strict=False)
    rows: list[formats.Row] = []
    last = 0
    try:
        for values in reader:
            number, last = first_line + last, reader.line_num
            record = lines.take()
            if values:  # else a blank line
                rows.append(
                    formats.csv_row(
                        number, record, values, file.header, extras=file.extras, fields=file.fields
                    )
                )
            if len(rows) == PIECE_ROWS:
                yield rows_table(rows, file.fields)
                rows = []
            if lines.at_end:
                break
    except csv.Error as exc:
        raise formats.UnreadableFileError(f"CSV cannot be parsed: {exc}") from exc
    if rows:
        yield rows_table(rows, file.fields)
    return last


def _plain_header(first: bytes) -> list[str] | None:
    line = first.removeprefix(formats.BOM).split(b"\n", 1)[0].removesuffix(b"\r")
    if not line or b'"' in line or b"\r" in line or b"\x00" in line or not _utf8(line):
        return None
    return line.decode("utf-8").split(",")


def csv_tables(content: IO[bytes], fields: formats.Fields = formats.EVENTS) -> Iterator[pa.Table]:
    """The records of a CSV file (as :func:`formats.csv_records` reads them) in tables."""
    chunks = blocks(content)
    first = next(chunks, None)
    if first is None:
        return
    header = _plain_header(first)
    if header is None:
        yield from tables_of(formats.csv_records(_replayed(chain([first], chunks)), fields), fields)
        return
    formats.check_csv_header(header, fields)
    file = _CsvFile(header, fields)
    csv.field_size_limit(max(csv.field_size_limit(), formats.CSV_FIELD_LIMIT))
    body = first.removeprefix(formats.BOM).split(b"\n", 1)[1:]
    rest = chain(body, chunks)
    line = 2  # the line of the next record
    for block in rest:
        if not block:
            continue
        fast = file.fast(block, line)
        if fast is not None:
            yield fast[0]
            line += fast[1]
        else:
            line += yield from _csv_stretch(block, rest, line, file)


# --- JSONL -----------------------------------------------------------------------------------


def _json_plain(block: bytes) -> _Lines | None:
    """The lines of a block of one JSON object per line (by its first and last bytes), in UTF-8
    without an escaped surrogate; ``None`` for any other block."""
    if not _utf8(block) or _SURROGATE_ESCAPE.search(block):  # a BOM: no line starts with "{"
        return None
    lines = _Lines(block)
    if lines.blank:
        return None
    if not (np.all(lines.bytes[lines.starts] == _OPEN) and np.all(lines.bytes[lines.ends - 1] == _CLOSE)):
        return None
    return lines


def _json_fast(block: bytes, first_line: int, fields: formats.Fields) -> pa.Table | None:
    lines = _json_plain(block)
    if lines is None:
        return None
    texts = pa.schema([(name, pa.string()) for name in fields.texts])
    try:
        parsed = pa_json.read_json(
            pa.py_buffer(block),
            read_options=pa_json.ReadOptions(block_size=len(block) + 1),
            parse_options=pa_json.ParseOptions(
                explicit_schema=texts, newlines_in_values=False, unexpected_field_behavior="infer"
            ),
        )
    except pa.ArrowInvalid:
        return None
    if (  # judged by the schema first: Arrow fails to combine some nested columns (lists of nulls)
        parsed.num_rows != lines.count
        or not set(parsed.column_names) <= fields.known
        or any(f.type not in _JSON_SCALARS for f in parsed.schema)
    ):
        return None
    columns = {name: parsed[name].combine_chunks() for name in parsed.column_names}
    values = {n: c if c.type == pa.string() else pc.cast(c, pa.string()) for n, c in columns.items()}
    return _table(lines, block, first_line, values=values, fields=fields, extras=None)


def jsonl_tables(content: IO[bytes], fields: formats.Fields = formats.EVENTS) -> Iterator[pa.Table]:
    """The records of a JSONL file (as :func:`formats.jsonl` reads them) in tables."""
    line = 1  # the line a block starts with
    for block in blocks(content):
        fast = _json_fast(block, line, fields)
        if fast is not None:
            yield fast
        else:
            yield from tables_of(_json_rows(block, line, fields), fields)
        line += block.count(b"\n") + (block[-1:] != b"\n")


def _json_rows(block: bytes, first_line: int, fields: formats.Fields) -> Iterator[formats.Row]:
    """:func:`formats.jsonl` over a block whose first line is ``first_line`` of its file."""
    for number, text in enumerate(io.BytesIO(block), start=first_line):
        line = text.removesuffix(b"\n").removeprefix(formats.BOM if number == 1 else b"")
        if line.strip():
            yield formats.json_line(number, line, fields)


# --- Parquet ---------------------------------------------------------------------------------

_ESCAPED = r'["\\\x00-\x1f]'  # what json.dumps writes escaped in a string
_YEARS = (1000, 9999)  # four-digit years: what Python's and Arrow's renderings agree on


def _plain_column(column: pa.Array) -> bool:
    """Whether the column's values render as :func:`formats.parquet` renders a row's values."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            column.validate(full=True)  # UTF-8
        except pa.ArrowInvalid:
            return False
        return not pc.any(pc.match_substring_regex(column, _ESCAPED)).as_py()
    if pa.types.is_timestamp(kind):
        if kind.unit == "ns" or kind.tz not in (None, "UTC", "+00:00"):
            return False
        years = pc.year(column)
        return column.null_count == len(column) or bool(
            pc.all(pc.and_(pc.greater_equal(years, _YEARS[0]), pc.less_equal(years, _YEARS[1]))).as_py()
        )
    return bool(
        pa.types.is_null(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or kind in (pa.float32(), pa.float64())
    )


def parquet_plain(batch: pa.RecordBatch) -> bool:
    """Whether a batch of Parquet rows is read the columnar way: columns of distinct plain names,
    of strings (UTF-8, nothing JSON escapes), numbers, booleans, nulls or timestamps (UTC or
    naive, at most microseconds, four-digit years); an ``event_id`` of strings or nulls."""
    names = batch.schema.names
    if len(set(names)) != len(names) or any(json.dumps(n, ensure_ascii=False) != f'"{n}"' for n in names):
        return False
    if "event_id" in names:
        kind = batch.schema.field("event_id").type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
            return False
    return all(_plain_column(column) for column in batch.columns)


def _floats(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A float column's values as ``str`` and as ``json.dumps`` write them (Python's shortest
    ``repr``). Arrow's cast writes the same shortest digits; where Python writes them positionally
    (magnitudes from 1e-4 up to 1e16) and Arrow does too, its text is Python's but for the ``.0`` an
    integral value lacks. The other values (NaN, infinities, zeros, tiny and huge magnitudes, or
    Arrow's exponent) are rendered by ``repr``, one at a time: few in real data."""
    values = column.cast(pa.float64())
    text = values.cast(pa.string())
    numbers = values.to_numpy(zero_copy_only=False)  # NaN where null
    present = ~np.asarray(values.is_null())
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(numbers)
        arrow = present & (magnitude >= 1e-4) & (magnitude < 1e16)
    arrow &= ~np.asarray(pc.match_substring(text, "e").fill_null(False))
    dotted = pc.match_substring(text, ".")
    text = pc.if_else(dotted, text, pc.binary_join_element_wise(text, ".0", ""))
    odd = np.flatnonzero(present & ~arrow)
    if not len(odd):
        return text, text
    rendered = [repr(v) for v in numbers[odd].tolist()]
    special = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
    index = np.full(len(numbers), -1, dtype=np.int64)
    index[odd] = np.arange(len(odd))
    at = pa.array(index, mask=index < 0)
    mine = pa.array(arrow | ~present)
    as_text = pc.if_else(mine, text, pa.array(rendered, pa.string()).take(at))
    as_json = pc.if_else(mine, text, pa.array([special.get(t, t) for t in rendered], pa.string()).take(at))
    return as_text, as_json


def _timestamps(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A timestamp column as ``datetime.isoformat()`` and ``str(datetime)`` write its values, the
    characters set digit by digit in NumPy (Arrow's ``strftime`` and cast took over a second per
    million values). Years are 1000 to 9999 (:func:`_plain_column`)."""
    micro = column.cast(pa.timestamp("us", tz=column.type.tz))
    n = len(micro)
    us = np.asarray(micro.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    days, rest = np.divmod(us, 86_400_000_000)
    year, month, day = _civil(days)
    seconds, fraction = np.divmod(rest, 1_000_000)
    hour, seconds = np.divmod(seconds, 3600)
    minute, second = np.divmod(seconds, 60)
    suffix = b"+00:00" if column.type.tz is not None else b""
    width = 26 + len(suffix)
    chars = np.empty((n, width), dtype=np.uint8)
    for at, value, count in ((0, year, 4), (5, month, 2), (8, day, 2), (11, hour, 2), (14, minute, 2)):
        _digits(chars, at, value, count)
    _digits(chars, 17, second, 2)
    _digits(chars, 20, fraction, 6)
    for at, char in ((4, b"-"), (7, b"-"), (10, b"T"), (13, b":"), (16, b":"), (19, b".")):
        chars[:, at] = ord(char)
    chars[:, 26:] = np.frombuffer(suffix, dtype=np.uint8)
    keep = np.ones((n, width), dtype=bool)
    whole = fraction == 0  # no fraction of a second is written
    keep[whole, 19:26] = False
    valid = np.asarray(micro.is_valid(), dtype=bool)
    keep[~valid] = False
    offsets = np.concatenate(([0], np.cumsum(keep.sum(axis=1)))).astype(np.int64)
    iso = _texts(n, offsets, chars, keep, valid)
    chars[:, 10] = ord(" ")
    return iso, _texts(n, offsets, chars, keep, valid)


def _digits(chars: np.ndarray[Any, Any], at: int, value: np.ndarray[Any, Any], count: int) -> None:
    """``value`` written in ``count`` decimal digits, zero-padded, at column ``at`` of ``chars``."""
    for k in range(count - 1, -1, -1):
        value, digit = np.divmod(value, 10)
        chars[:, at + k] = ord("0") + digit


def _texts(
    n: int,
    offsets: np.ndarray[Any, Any],
    chars: np.ndarray[Any, Any],
    keep: np.ndarray[Any, Any],
    valid: np.ndarray[Any, Any],
) -> pa.Array:
    data = pa.py_buffer(chars[keep].tobytes())
    texts = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data)
    if not valid.all():
        texts = pc.if_else(pa.array(valid), texts, pa.scalar(None, pa.large_string()))
    return texts.cast(pa.string())


def _civil(days: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], ...]:
    """Year, month and day of days since 1970-01-01 in the proleptic Gregorian calendar (Howard
    Hinnant's ``civil_from_days``)."""
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def _rendered(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A plain column's values as text (as :func:`formats._text`) and as JSON values (``null``
    included), as :func:`formats.parquet` renders them."""
    kind = column.type
    if pa.types.is_floating(kind):
        text, as_json = _floats(column)
    elif pa.types.is_timestamp(kind):
        text, stamp = _timestamps(column)
        as_json = pc.binary_join_element_wise('"', stamp, '"', "")
    elif pa.types.is_null(kind):
        text = as_json = pa.nulls(len(column), pa.string())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = column.cast(pa.string())
        as_json = pc.binary_join_element_wise('"', text, '"', "")
    else:  # integers and booleans: the same as text and in JSON
        text = as_json = column.cast(pa.string())
    return text.cast(pa.string()), pc.fill_null(as_json.cast(pa.string()), "null")


def _parquet_table(batch: pa.RecordBatch, first_row: int, fields: formats.Fields) -> pa.Table:
    n = batch.num_rows
    names = batch.schema.names
    rendered = {name: _rendered(column) for name, column in zip(names, batch.columns, strict=True)}
    pieces: list[Any] = []
    for i, name in enumerate(names):
        pieces += [("{" if i == 0 else ", ") + f'"{name}": ', rendered[name][1]]
    raw = pc.binary_join_element_wise(*pieces, "}", "") if pieces else pa.repeat(pa.scalar("{}"), n)
    none = pa.nulls(n, pa.string())
    extras = formats.unknown_fields(batch.schema.names, fields)
    columns = {
        "row_number": pa.array(np.arange(first_row, first_row + n, dtype=np.int64)),
        "raw": raw.cast(pa.large_binary()),
        **{name: rendered[name][0] if name in rendered else none for name in fields.names},
        "problem": none,
        "problem_detail": none,
        "extra_fields": none if extras is None else pa.repeat(pa.scalar(extras, pa.string()), n),
    }
    return pa.table(columns, schema=schema(fields))


def parquet_tables(content: IO[bytes], fields: formats.Fields = formats.EVENTS) -> Iterator[pa.Table]:
    """The records of a Parquet file (as :func:`formats.parquet` reads them) in tables, a batch of
    rows at a time: the plain ones (:func:`parquet_plain`) the columnar way."""
    number = 1
    for batch in formats.parquet_batches(content):
        if parquet_plain(batch):
            yield _parquet_table(batch, number, fields)
        else:
            yield from tables_of(formats.parquet_batch(formats.parquet_values(batch), number, fields), fields)
        number += batch.num_rows


def parquet_readable(content: IO[bytes]) -> None:
    """Read every batch of a Parquet file as :func:`parquet_tables` would, raising
    :class:`formats.UnreadableFileError` where it could not."""
    for batch in formats.parquet_batches(content):
        if not parquet_plain(batch):
            formats.parquet_values(batch)


READERS = {".jsonl": jsonl_tables, ".csv": csv_tables, ".parquet": parquet_tables}
