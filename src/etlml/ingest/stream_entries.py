"""Stream entries as columns: one ``XRANGE`` reply, as the server sent it, to records (pure, no I/O).

A reply is a list of ``[id, [field, value, field, value, ...]]``, all bytes. An entry with exactly the
five fields of an event, each once and all UTF-8 (nearly every entry), is parsed with the whole page
at once in Arrow; any other entry (a field missing, unknown or repeated, bytes that are not UTF-8)
is rendered on its own, with its raw bytes, by :func:`irregular`. Provenance: ``row_number`` is the
entry id as one number, ``ms * 1,000,000 + sequence`` (:func:`row_number`, :func:`entry_id`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etlml.errors import PermanentError
from etlml.records import EVENT

FIELDS = EVENT.names  # event_id, ts_utc, f1, f2, f3
_KNOWN = tuple(name.encode() for name in FIELDS)
_KNOWN_SET = pa.array(_KNOWN, pa.binary())
_ALL_FIELDS = (1 << len(FIELDS)) - 1  # each known field once: the sum of 2 ** (its position)
SEQUENCES = 1_000_000
"""Entry ids map to ``row_number`` as ``ms * SEQUENCES + sequence``: at most a million entries per
millisecond, far beyond what one stream takes."""
COLUMNS = ("row_number", "raw", *FIELDS, "problem", "problem_detail", "extra_fields")
"""What :func:`page_table` gives: :data:`etlml.records.RECORD` without ``source_file``."""
_SCHEMA = pa.schema(
    [
        ("row_number", pa.int64()),
        ("raw", pa.large_binary()),
        *((name, pa.string()) for name in COLUMNS[2:]),
    ]
)


class StreamError(PermanentError, RuntimeError):
    """The stream holds something etlml cannot read as records."""


def parse_id(entry: str | bytes) -> tuple[int, int]:
    """``"1764145200000-3"`` -> ``(1764145200000, 3)``."""
    text = entry.decode() if isinstance(entry, bytes) else entry
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def row_number(entry: str | bytes) -> int:
    """The entry id as the ``row_number`` of its record: ``ms * 1,000,000 + sequence``."""
    ms, seq = parse_id(entry)
    if seq >= SEQUENCES:
        raise StreamError(
            f"entry id {entry!r} has a sequence of {SEQUENCES} or more, which etlml cannot number"
        )
    if ms > _LAST_MS:
        raise StreamError(f"entry id {entry!r} is past the year 2262, which etlml cannot number")
    return ms * SEQUENCES + seq


def entry_id(number: int) -> str:
    """The inverse of :func:`row_number`."""
    return f"{number // SEQUENCES}-{number % SEQUENCES}"


def page_table(page: Sequence[Sequence[Any]]) -> pa.Table:
    """The records of one ``XRANGE`` reply (:data:`COLUMNS`), in the reply's order."""
    n = len(page)
    entries = _Entries(page)
    fast = entries.complete | entries.partial
    columns: dict[str, pa.Array] = {"row_number": _row_numbers(page)}
    for position, name in enumerate(FIELDS):
        at = np.flatnonzero((entries.field == position) & fast[entries.owner])
        columns[name] = _gathered(entries.text, at, entries.owner[at], n)
    partial = np.flatnonzero(entries.partial)
    columns["raw"] = _gathered(entries.as_json(page), np.arange(len(partial)), partial, n)
    for name in COLUMNS[len(FIELDS) + 2 :]:
        columns[name] = pa.nulls(n, _SCHEMA.field(name).type)
    odd = np.flatnonzero(~fast)
    if len(odd):
        columns = _with_odd(columns, page, odd)
    return pa.table(columns, schema=_SCHEMA)


_JSON_ESCAPED = r'["\\\x00-\x1f]'  # what json.dumps escapes in a string (ensure_ascii=False)
_ONES = np.array([bin(k).count("1") for k in range(1 << len(FIELDS))], dtype=np.int64)


class _Entries:
    """The fields of a page's entries, flattened: which entry owns each field, which known field it
    is (-1: unknown), its value as text; and which entries need no rendering of their own.

    ``complete``: the five known fields, each once, all UTF-8 (no raw bytes needed: the contract
    renders the fields). ``partial``: some of them, each once, all UTF-8 and none needing escaping in
    JSON, so that their raw bytes (the entry as JSON) are made here, for the whole page at once."""

    def __init__(self, page: Sequence[Sequence[Any]]) -> None:
        n = len(page)
        nested = pa.array([entry[1] for entry in page], pa.list_(pa.binary()))
        lengths = np.asarray(pc.list_value_length(nested).fill_null(0), dtype=np.int64)
        if (lengths % 2).any():
            raise StreamError("the Redis server sent an entry whose fields are not pairs: not a stream reply")
        widths = lengths // 2
        flat = nested.flatten()
        self.owner = np.repeat(np.arange(n), widths)
        self.names = flat.take(pa.array(np.arange(0, len(flat), 2)))
        self.values = flat.take(pa.array(np.arange(1, len(flat), 2)))
        found = pc.index_in(self.names, value_set=_KNOWN_SET).fill_null(-1)
        self.field = np.asarray(found, dtype=np.int64)
        self.text, utf8 = _utf8(self.values)
        seen = np.bincount(
            self.owner, weights=np.where(self.field >= 0, 1 << self.field, 1 << 16), minlength=n
        )
        seen = seen.astype(np.int64)
        once = (seen <= _ALL_FIELDS) & (_ONES[np.minimum(seen, _ALL_FIELDS)] == widths) & (widths > 0)
        valid = once & (np.bincount(self.owner[~utf8], minlength=n) == 0)
        self.complete = valid & (widths == len(FIELDS))
        self.partial = valid & ~self.complete
        if self.partial.any():  # but an entry with a value JSON would escape: rendered on its own
            at = np.flatnonzero(self.partial[self.owner])
            escaped = np.asarray(pc.match_substring_regex(self.text.take(pa.array(at)), _JSON_ESCAPED))
            self.partial[self.owner[at[escaped]]] = False

    def as_json(self, page: Sequence[Sequence[Any]]) -> pa.Array:
        """The raw bytes of the ``partial`` entries: a JSON object of the entry id and its fields in
        stored order, byte for byte as :func:`irregular` writes it."""
        at = np.flatnonzero(self.partial[self.owner])
        if not len(at):
            return pa.array([], pa.large_binary())
        pick = pa.array(at)
        names = self.names.take(pick).cast(pa.string())  # known fields: ASCII
        quoted = pc.binary_join_element_wise('"', names, '": "', self.text.take(pick), '"', "")
        counts = np.bincount(self.owner[at], minlength=len(self.partial))[self.partial]
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
        fields = pc.binary_join(pa.ListArray.from_arrays(offsets, quoted), ", ")
        ids = pa.array([page[int(i)][0] for i in np.flatnonzero(self.partial)], pa.binary())
        ids = ids.cast(pa.string())
        joined = pc.binary_join_element_wise('{"entry_id": "', ids, '", ', fields, "}", "")
        return joined.cast(pa.large_binary())


def _gathered(values: pa.Array, at: np.ndarray[Any, Any], rows: np.ndarray[Any, Any], n: int) -> pa.Array:
    """A column of ``n`` rows holding ``values[at]`` at ``rows``, null elsewhere."""
    if len(rows) == n and n and rows[0] == 0 and (np.diff(rows) == 1).all():
        return values.take(pa.array(at))
    index = np.full(n, -1, dtype=np.int64)
    index[rows] = at
    return values.take(pa.array(index, mask=index < 0))


def _utf8(values: pa.Array) -> tuple[pa.Array, np.ndarray[Any, np.dtype[np.bool_]]]:
    """``values`` as text, and where each is valid UTF-8 (text is empty where it is not)."""
    try:
        return values.cast(pa.string()), np.ones(len(values), dtype=bool)
    except pa.ArrowInvalid:
        valid = np.fromiter(map(_is_utf8, values.to_pylist()), dtype=bool, count=len(values))
        kept = pc.if_else(pa.array(valid), values, pa.scalar(b"", pa.binary()))
        return kept.cast(pa.string()), valid


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _row_numbers(page: Sequence[Sequence[Any]]) -> pa.Array:
    """The :func:`row_number` of every entry, the ids split at their dash and parsed in Arrow; a page
    with an id of another form, or one etlml cannot number, one id at a time by :func:`row_number`
    (which raises, naming it)."""
    ids = [entry[0] for entry in page]
    parts = b"-".join(ids).split(b"-")
    dashes = pc.count_substring(pa.array(ids, pa.binary()), "-")
    if len(parts) == 2 * len(ids) and pc.all(pc.equal(dashes, 1)).as_py():
        try:
            ms = np.asarray(pa.array(parts[0::2], pa.binary()).cast(pa.string()).cast(pa.int64()))
            seq = np.asarray(pa.array(parts[1::2], pa.binary()).cast(pa.string()).cast(pa.int64()))
        except pa.ArrowInvalid:
            pass
        else:
            if ((seq >= 0) & (seq < SEQUENCES) & (ms >= 0) & (ms <= _LAST_MS)).all():
                return pa.array(ms * SEQUENCES + seq)
    return pa.array([row_number(i) for i in ids], pa.int64())


_LAST_MS = (np.iinfo(np.int64).max - SEQUENCES) // SEQUENCES


def _with_odd(
    columns: dict[str, pa.Array], page: Sequence[Sequence[Any]], odd: np.ndarray[Any, Any]
) -> dict[str, pa.Array]:
    """``columns`` with the records of the ``odd`` entries, each rendered on its own (:func:`record`),
    in their places."""
    rows = []
    for i in odd:
        ident, fields = page[i]
        fields = fields or ()
        rows.append(record(ident, dict(zip(fields[0::2], fields[1::2], strict=True))))
    n = len(columns["row_number"])
    out = {"row_number": columns["row_number"]}
    for k, name in enumerate(COLUMNS[1:], start=1):
        theirs = pa.array([r[k] for r in rows], _SCHEMA.field(name).type)
        out[name] = pc.coalesce(columns[name], _gathered(theirs, np.arange(len(odd)), odd, n))
    return out


def record(ident: bytes, fields: Mapping[bytes, bytes]) -> tuple[Any, ...]:
    """``(row_number, raw, *fields, problem, problem_detail, extra_fields)`` of one entry. An entry
    with exactly the five fields, all UTF-8, needs no raw bytes: the contract renders its fields."""
    if len(fields) == len(_KNOWN):
        try:
            values = [fields[name].decode() for name in _KNOWN]
        except (KeyError, UnicodeDecodeError):
            pass
        else:
            return (row_number(ident), None, *values, None, None, None)
    return irregular(ident, fields)


def irregular(ident: bytes, fields: Mapping[bytes, bytes]) -> tuple[Any, ...]:
    """An entry with missing, unknown or non-UTF-8 fields: raw bytes are a JSON object of the entry id
    and every field, each value's bytes as stored."""
    as_text = {
        k.decode(errors="surrogateescape"): v.decode(errors="surrogateescape") for k, v in fields.items()
    }
    document = {"entry_id": ident.decode(), **as_text}
    raw = json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogateescape")
    problem = detail = None
    bad = [name for name, value in as_text.items() if not _encodes(name) or not _encodes(value)]
    if bad:
        problem, detail = "invalid_encoding", f"fields {sorted(bad)} are not valid UTF-8"
    values = [None if bad else as_text.get(name) for name in FIELDS]
    extra = sorted(set(as_text) - set(FIELDS))
    return (row_number(ident), raw, *values, problem, detail, json.dumps(extra) if extra else None)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def frame(key: str, tables: Sequence[pa.Table]) -> pd.DataFrame:
    """Pages' records as one frame of :data:`etlml.records.RECORD`, ``source_file`` the stream's key."""
    table = pa.concat_tables(tables) if tables else _SCHEMA.empty_table()
    table = table.add_column(0, "source_file", pa.repeat(pa.scalar(key, pa.string()), table.num_rows))
    records: pd.DataFrame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    return records
