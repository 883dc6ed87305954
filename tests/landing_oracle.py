"""The record-at-a-time reading of landing files, as etlml read them before its columnar reader: one
:data:`formats.Row` per record (``json.loads`` per line, ``csv.reader`` over the whole file, Parquet
rows as Python values), gathered into frames. Kept as the oracle the columnar reader is compared
with (tests/unit/test_columnar_reading.py), never shipped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

import pandas as pd

from etlml.ingest import formats, landing


def jsonl(content: IO[bytes], fields: formats.Fields = formats.EVENTS) -> Iterator[formats.Row]:
    """One record per non-blank line; ``row_number`` is the line number (from 1)."""
    for number, text in enumerate(content, start=1):
        line = text.removesuffix(b"\n").removeprefix(formats.BOM if number == 1 else b"")
        if line.strip():
            yield formats.json_line(number, line, fields)


READERS: dict[str, Callable[[IO[bytes], formats.Fields], Iterator[formats.Row]]] = {
    ".jsonl": jsonl,
    ".csv": formats.csv_records,
    ".parquet": formats.parquet,
}


def _unreadable(file: landing.LandingFile, limit: int) -> tuple[str, str] | None:
    """:func:`landing._unreadable`, a Parquet file's rows read as Python values."""
    if str(landing._extension(file.name)) != ".parquet":
        return landing._unreadable(file, limit)
    try:
        with file.open() as stored:
            if formats.parquet_inflated_bytes(stored) > limit:
                return landing._too_large_inflated(limit)
            for _ in formats.parquet_rows(stored):
                pass
    except formats.UnreadableFileError as exc:
        return "unparseable_file", str(exc)
    return None


def file_records(
    file: landing.LandingFile, limit: int, chunk_records: int, fields: formats.Fields = formats.EVENTS
) -> Iterator[pd.DataFrame]:
    """:func:`landing.file_records`, reading one record at a time."""
    problem = landing._refused(file, limit) or _unreadable(file, limit)
    if problem is not None:
        yield landing._whole_file(file, *problem, fields)
        return
    extension = str(landing._extension(file.name))
    reader = READERS[extension.removesuffix(".gz")]
    rows: list[formats.Row] = []
    read = 0
    try:
        with file.open() as stored:
            content = stored
            if extension != ".parquet":
                content, _ = landing._content(file, stored, limit)
            for row in reader(content, fields):
                rows.append(row)
                if len(rows) == chunk_records:
                    frame, rows = landing._frame(file.source_file, rows, fields), []
                    read += len(frame)
                    yield frame
    except formats.UnreadableFileError as exc:
        if read:
            raise landing.LandingFileChangedError(f"became unreadable after {read} records") from exc
        yield landing._whole_file(file, "unparseable_file", str(exc), fields)
        return
    except (landing._TooLargeError, *landing._GZIP_ERRORS) as exc:
        raise landing.LandingFileChangedError("changed while it was read") from exc
    if rows:
        yield landing._frame(file.source_file, rows, fields)
