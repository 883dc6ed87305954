"""PostgreSQL binary COPY encoding of whole columns with NumPy, no Python loop over rows.

Binary COPY is a header, then per row a 16-bit field count and per field a 32-bit length (-1 for
NULL) followed by the value in network byte order, then a 16-bit -1 trailer. Each column is
written into one preallocated buffer at offsets computed from the row lengths.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in microseconds since 1970
_FIXED = {"float8": 8, "timestamptz": 8, "bool": 1, "int8": 8}

Bytes = np.ndarray[Any, np.dtype[np.uint8]]
Ints = np.ndarray[Any, np.dtype[np.int64]]


class CopyEncodingError(ValueError):
    """A column cannot be encoded as the PostgreSQL type it was declared as."""


@dataclass(frozen=True)
class _Column:
    """One column as raw bytes: per-row value length (-1 = NULL) and the value bytes."""

    lengths: Ints
    data: Bytes  # fixed-width types: n * width bytes; text: the concatenated UTF-8 values
    starts: Ints | None = None  # text only: where each value begins in ``data``


def _fixed(values: np.ndarray[Any, Any], null: np.ndarray[Any, np.dtype[np.bool_]], width: int) -> _Column:
    lengths = np.where(null, -1, width).astype(np.int64)
    return _Column(lengths, np.ascontiguousarray(values).view(np.uint8).reshape(-1))


def _column(series: pd.Series, pg_type: str) -> _Column:
    null = series.isna().to_numpy(dtype=bool)
    if pg_type == "float8":
        return _fixed(series.to_numpy(dtype=np.float64, na_value=np.nan).astype(">f8"), null, 8)
    if pg_type == "int8":
        return _fixed(series.fillna(0).to_numpy(dtype=np.int64).astype(">i8"), null, 8)
    if pg_type == "bool":
        return _fixed(series.fillna(False).to_numpy(dtype=bool).astype(np.uint8), null, 1)
    if pg_type == "timestamptz":
        if not isinstance(series.dtype, pd.DatetimeTZDtype):
            raise CopyEncodingError(f"column {series.name!r}: timestamptz needs tz-aware datetimes")
        micros = series.dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)
        return _fixed((micros - _PG_EPOCH_US).astype(">i8"), null, 8)
    if pg_type in _VARLEN:
        return _variable(series, null, pg_type)
    raise CopyEncodingError(f"column {series.name!r}: no binary encoder for PostgreSQL type {pg_type!r}")


# variable-length PostgreSQL types: the Arrow types a column may hold, and the one it is read as
_VARLEN: dict[str, tuple[tuple[Any, ...], Any, str]] = {
    "text": ((pa.string(), pa.large_string()), pa.large_string(), "strings"),
    "bytea": ((pa.binary(), pa.large_binary()), pa.large_binary(), "bytes"),
}


def _variable(series: pd.Series, null: np.ndarray[Any, np.dtype[np.bool_]], pg_type: str) -> _Column:
    accepted, target, noun = _VARLEN[pg_type]
    arrow = pa.array(series, from_pandas=True)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if arrow.type not in accepted and arrow.null_count != len(arrow):
        raise CopyEncodingError(f"column {series.name!r}: {pg_type} needs {noun}, got {arrow.type}")
    return _varlen(arrow.cast(target), null)


def _varlen(arrow: Any, null: np.ndarray[Any, np.dtype[np.bool_]]) -> _Column:
    """A ``large_string`` or ``large_binary`` array: its offsets and data buffer, sent as they are."""
    _, offset_buffer, data_buffer = arrow.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[arrow.offset : arrow.offset + len(arrow) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    lengths = np.where(null, -1, np.diff(offsets)).astype(np.int64)
    return _Column(lengths, data, starts=offsets[:-1].astype(np.int64))


def encode(frame: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> bytes:
    """Binary COPY rows (no header or trailer) of ``frame``'s ``columns`` as (name, pg type)."""
    n = len(frame)
    encoded = [_column(frame[name], pg_type) for name, pg_type in columns]
    # bytes per row: field count, then per field its length word and its value (if not NULL)
    row_sizes = np.full(n, 2, dtype=np.int64)
    for col in encoded:
        row_sizes += 4 + np.maximum(col.lengths, 0)
    row_starts = np.zeros(n, dtype=np.int64)
    np.cumsum(row_sizes[:-1], out=row_starts[1:])
    out = np.empty(int(row_sizes.sum()), dtype=np.uint8)
    _put(out, row_starts, np.full(n, len(columns), dtype=">i2").view(np.uint8).reshape(n, 2))
    cursor = row_starts + 2
    for (_, pg_type), col in zip(columns, encoded, strict=True):
        _put(out, cursor, col.lengths.astype(">i4").view(np.uint8).reshape(n, 4))
        cursor += 4
        present = col.lengths > 0
        if col.starts is None:
            width = _FIXED[pg_type]
            rows = col.data.reshape(n, width)[present]
            _put(out, cursor[present], rows)
        else:
            _scatter_text(out, cursor[present], col.starts[present], col.lengths[present], col.data)
        cursor += np.maximum(col.lengths, 0)
    return out.tobytes()


def _put(out: Bytes, at: Ints, rows: np.ndarray[Any, Any]) -> None:
    """Write ``rows`` (m x width bytes) into ``out`` at the m offsets ``at``."""
    if len(at):
        out[at[:, None] + np.arange(rows.shape[1])] = rows


def _scatter_text(out: Bytes, at: Ints, starts: Ints, lengths: Ints, data: Bytes) -> None:
    """Copy variable-length values ``data[starts[i] : starts[i] + lengths[i]]`` to ``out[at[i]:]``."""
    total = int(lengths.sum())
    if total == 0:
        return
    first = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=first[1:])
    within = np.arange(total, dtype=np.int64) - np.repeat(first, lengths)
    out[np.repeat(at, lengths) + within] = data[np.repeat(starts, lengths) + within]


def pieces(frame: pd.DataFrame, columns: Sequence[tuple[str, str]], size: int = 50_000) -> Iterator[bytes]:
    """The binary COPY rows of ``frame``, ``size`` rows a piece: the server ingests one piece while
    the next is encoded."""
    for start in range(0, len(frame), size):
        yield encode(frame.iloc[start : start + size], columns)
