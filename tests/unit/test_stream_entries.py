"""Stream entries parsed a page at a time give, entry for entry, the records of the one-entry parser."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from etlml.ingest.stream_entries import COLUMNS, StreamError, frame, page_table, record, row_number
from etlml.records import RECORD

NAMES = [b"event_id", b"ts_utc", b"f1", b"f2", b"f3", b"colour", b"\xff\xfe", "f\u00e9".encode()]
VALUES = st.one_of(
    st.sampled_from([b"e-1", b"2026-11-20T12:00:00+00:00", b"1.5", b"", b"nan", "\u00e9t\u00e9".encode()]),
    st.binary(max_size=12),  # often not UTF-8
    st.sampled_from([b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"a\x00b"]),  # surrogate, overlong
)


def regular(i: int) -> list[bytes]:
    return [b"event_id", f"e{i}".encode(), b"ts_utc", b"t", b"f1", b"1", b"f2", b"2", b"f3", b"3"]


@st.composite
def entries(draw: Any) -> list[list[Any]]:
    """A page: mostly regular entries (any field order), others with fields missing, unknown,
    repeated or not UTF-8; ids increasing, some sharing a millisecond."""
    page = []
    for i in range(draw(st.integers(1, 30))):
        if draw(st.booleans()):
            pairs = regular(i)
            order = draw(st.permutations(range(5)))
            fields = [x for k in order for x in pairs[2 * k : 2 * k + 2]]
        else:
            chosen = draw(st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=8))
            fields = [x for pair in chosen for x in pair]
        page.append([f"1795176000{i // 3:03d}-{i % 3}".encode(), fields])
    return page


def oracle(page: list[list[Any]]) -> pd.DataFrame:
    """One entry at a time, its fields as a dict (a repeated field: the last value, as redis-py's)."""
    rows = [record(ident, dict(zip(fields[0::2], fields[1::2], strict=True))) for ident, fields in page]
    out = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    out.insert(0, "source_file", "k")
    return out.astype({n: d for n, d in RECORD.dtypes().items() if n != "raw"})


@given(entries())
def test_a_page_parses_as_its_entries_one_by_one(page: list[list[Any]]) -> None:
    pd.testing.assert_frame_equal(frame("k", [page_table(page)]), oracle(page))


def test_regular_entries_need_no_raw_bytes_and_the_others_keep_theirs() -> None:
    page = [
        [b"5-0", regular(0)],
        [b"5-1", regular(1)[:6]],  # no f2, no f3
        [b"6-0", [*regular(2)[:4], b"f1", b"\xff", *regular(2)[6:]]],
        [b"6-1", [*regular(3), b"colour", b"red"]],
    ]
    got = frame("k", [page_table(page)])
    assert got["row_number"].tolist() == [5_000_000, 5_000_001, 6_000_000, 6_000_001]
    assert got["raw"].iloc[0] is None and all(isinstance(r, bytes) for r in got["raw"].iloc[1:])
    assert got["problem"].tolist()[2] == "invalid_encoding" and b"\xff" in got["raw"].iloc[2]
    assert got["extra_fields"].tolist()[3] == '["colour"]'
    assert list(got.columns) == list(RECORD.names)


@pytest.mark.parametrize("bad", [b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xff"])
def test_bytes_python_would_not_decode_are_not_utf8_in_a_page_either(bad: bytes) -> None:
    page = [[b"5-0", regular(0)], [b"5-1", [*regular(1)[:4], b"f1", bad, *regular(1)[6:]]]]
    got = frame("k", [page_table(page)])
    assert got["problem"].tolist() == [pd.NA, "invalid_encoding"]
    pd.testing.assert_frame_equal(got, oracle(page))


@given(st.lists(st.tuples(st.integers(0, 9_223_372_036_853), st.integers(0, 999_999)), min_size=1))
def test_entry_ids_are_numbered_as_one_at_a_time(ids: list[tuple[int, int]]) -> None:
    page = [[f"{ms}-{seq}".encode(), regular(0)] for ms, seq in ids]
    assert page_table(page)["row_number"].to_pylist() == [row_number(entry[0]) for entry in page]


@pytest.mark.parametrize(
    ("ident", "why"),
    [(b"5-1000000", "sequence of 1000000 or more"), (b"9223372036855-0", "past the year 2262")],
)
def test_an_entry_id_etlml_cannot_number_is_refused(ident: bytes, why: str) -> None:
    with pytest.raises(StreamError, match=why):
        page_table([[b"5-0", regular(0)], [ident, regular(1)]])


def test_no_page_is_an_empty_frame_of_records() -> None:
    empty = frame("k", [])
    assert list(empty.columns) == list(RECORD.names) and len(empty) == 0
