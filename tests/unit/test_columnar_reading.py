"""The columnar reading of landing files gives every record the verdict the record-at-a-time reading
(tests/landing_oracle.py) gives it: the same records read (fields, raw bytes, row numbers, chunks),
the same accepted events and values, and the same reason and raw bytes for every rejected record;
over the fixtures and over generated hostile files, with blocks small enough that records straddle
them."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etlml.ingest import columnar, contract, formats, landing
from etlml.interval import Interval
from tests import contract_oracle, landing_oracle
from tests.landing_files import bad_partition

START = datetime(2026, 11, 25, 18, 10, tzinfo=UTC)
INTERVAL = Interval(START, START + timedelta(minutes=10))
KEY = "2026-11-25/1810"
RULES = contract.Rules(
    INTERVAL, now=INTERVAL.end + timedelta(minutes=1), max_future_skew=timedelta(minutes=5)
)
ORACLE_RULES = contract_oracle.Rules(
    INTERVAL, now=INTERVAL.end + timedelta(minutes=1), max_future_skew=timedelta(minutes=5)
)
LIMIT = 1 << 30
HEADER = b"event_id,ts_utc,f1,f2,f3"


@contextmanager
def block_bytes(size: int) -> Iterator[None]:
    kept = columnar.BLOCK_BYTES
    columnar.BLOCK_BYTES = size
    try:
        yield
    finally:
        columnar.BLOCK_BYTES = kept


def _outcome(reader: object, file: landing.LandingFile, chunk: int) -> list[pd.DataFrame] | str:
    try:
        return list(reader(file, LIMIT, chunk))  # type: ignore[operator]
    except landing.LandingFileChangedError:
        return "changed"


def _raw_as_objects(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(raw=frame["raw"].to_numpy(dtype=object))


def assert_same_verdicts(name: str, data: bytes, *, chunk: int = 100_000, block: int | None = None) -> None:
    """Both readings of ``data`` as file ``name``: the same records in the same chunks, and the
    contract's verdicts on them equal."""
    file = landing.LandingFile(f"{KEY}/{name}", len(data), data=data)
    with block_bytes(block or columnar.BLOCK_BYTES):
        new = _outcome(landing.file_records, file, chunk)
    old = _outcome(landing_oracle.file_records, file, chunk)
    if isinstance(old, str) or isinstance(new, str):
        assert new == old
        return
    new = [_raw_as_objects(frame) for frame in new]  # raw bytes stay in Arrow: compared as bytes
    assert [len(f) for f in new] == [len(f) for f in old]
    if not old:
        return
    numbers_as_text = ".jsonl" in name  # a JSON number's text may read "10" where Python wrote "10.0"
    for got, want in zip(new, old, strict=True):
        columns = [c for c in want if not (numbers_as_text and c in ("f1", "f2", "f3"))]
        pd.testing.assert_frame_equal(got[columns], want[columns])
    got_checked = contract.apply(pd.concat(new), RULES, provenance=True)
    want_checked = contract_oracle.apply(pd.concat(old), ORACLE_RULES, provenance=True)
    pd.testing.assert_frame_equal(_raw_as_objects(got_checked.valid), want_checked.valid)
    columns = [c for c in want_checked.rejected if not (numbers_as_text and c == "message")]
    pd.testing.assert_frame_equal(got_checked.rejected[columns], want_checked.rejected[columns])
    assert got_checked.counts.to_xcom() == want_checked.counts.to_xcom()


def test_the_fixtures_get_the_same_verdicts(tmp_path: Path) -> None:
    bad_partition(tmp_path, START, KEY)
    files = sorted((tmp_path / KEY).iterdir())
    assert len(files) >= 8
    for path in files:
        for chunk, block in ((100_000, None), (7, 48)):
            assert_same_verdicts(path.name, path.read_bytes(), chunk=chunk, block=block)


def _export(n: int, *, duplicates: int = 0) -> bytes:
    """Rows as bench/landing.py writes them: a header, clean rows, some ids delivered again."""
    lines = [HEADER]
    for i in [*range(n), *range(duplicates)]:
        ts = (START + timedelta(microseconds=i * 997)).isoformat()
        lines.append(f"lnd-{i:09d},{ts},{10 + i % 7}.25,{'' if i % 20 == 0 else i % 3},{100 + i}".encode())
    return b"\n".join(lines) + b"\n"


def test_a_clean_export_is_read_without_the_record_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _export(3000, duplicates=30)
    assert_same_verdicts("export.csv", data, chunk=1000, block=4096)

    def unused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a plain block was read record by record")

    crlf = data.replace(b"\n", b"\r\n")
    assert_same_verdicts("crlf.csv", crlf, chunk=1000, block=4096)
    monkeypatch.setattr(formats, "csv_row", unused)
    monkeypatch.setattr(formats, "json_line", unused)
    for name, content in (("x.csv", data), ("crlf.csv", crlf)):
        with block_bytes(4096):
            frames = list(
                landing.file_records(landing.LandingFile(name, len(content), data=content), LIMIT, 1000)
            )
        assert sum(map(len, frames)) == 3030
    rows = [json.dumps({"event_id": f"j{i}", "ts_utc": START.isoformat(), "f1": i / 3}) for i in range(500)]
    jsonl = "\n".join(rows).encode()
    with block_bytes(2048):
        frames = list(landing.file_records(landing.LandingFile("x.jsonl", len(jsonl), data=jsonl), LIMIT, 99))
    assert sum(map(len, frames)) == 500


@pytest.mark.parametrize("line", [b'{"other": [null, null]}', b'{"event_id": "a", "f1": [null, null]}'])
def test_a_json_list_of_nulls_is_read_record_by_record(line: bytes) -> None:
    """Arrow reads such a line, but fails to combine the column it makes of it (hypothesis found
    the first): the block is read record by record instead, with the record reader's verdicts."""
    assert_same_verdicts("l.jsonl", line + b"\n" + line + b"\n")


def test_a_quoted_record_across_blocks_then_plain_blocks_again() -> None:
    lines = _export(400).split(b"\n")
    lines[150] = b'"q-1,\nstill q-1",' + START.isoformat().encode() + b',1,2,"3\r\n"'
    lines[300] = b"\xff-not-utf8," + START.isoformat().encode() + b",1,2,3"
    data = b"\n".join(lines)
    for block in (40, 3000):
        assert_same_verdicts("q.csv", data, chunk=33, block=block)
        assert_same_verdicts("q.csv.gz", gzip.compress(data), chunk=33, block=block)


IDS = ["e1", "e2", "e1", " ", "", "x" * 129, "a\x1fb", "é", "id,comma", 'id"quote']
STAMPS = [
    (START + timedelta(minutes=1)).isoformat(),
    (START + timedelta(seconds=1, microseconds=5)).isoformat().replace("+00:00", "Z"),
    (START - timedelta(minutes=1)).isoformat(),
    "2099-01-01T00:00:00+00:00",
    "2026-11-25T18:11:00",
    "2026-02-30T18:11:00+00:00",
    "",
    " ",
]
NUMBERS = ["1", "1.5", "-0", "", "NaN", "inf", "1e300", "1e16", "-1e400", "+.5", "1.", "ten", " 2 ", "0x10"]
FIELD = st.one_of(
    st.sampled_from(IDS + STAMPS + NUMBERS),
    st.text(max_size=6),
    st.sampled_from(["x" * 3000, '"a,b"', '"a\nb"', '"a""b"', "a\rb", "\x00"]),
)
LINE = st.one_of(
    st.tuples(st.sampled_from(IDS), st.sampled_from(STAMPS), *[st.sampled_from(NUMBERS)] * 3).map(
        lambda t: ",".join(t).encode()
    ),
    st.lists(FIELD, min_size=1, max_size=7).map(lambda f: ",".join(f).encode("utf-8", "surrogatepass")),
    st.binary(max_size=12),
)
HEADERS = [
    HEADER,
    HEADER + b",source_system",
    b"ts_utc,f3,event_id,f1",
    b'"event_id",ts_utc,f1,f2,f3',
    b"event_id,ts_utc,f1,f1",
    b"event_id,f1",
    b"\xef\xbb\xbf" + HEADER,
    b"\n" + HEADER,
    b"event_id,ts_utc,f\xff",
]


def _joined(lines: list[bytes], ends: list[bytes], last: bool) -> bytes:
    body = b"".join(line + end for line, end in zip(lines, ends, strict=False))
    return body if last else body.removesuffix(ends[-1] if ends else b"")


GOOD_LINE = st.tuples(st.sampled_from(IDS[:7]), st.sampled_from(STAMPS), *[st.sampled_from(NUMBERS)] * 3).map(
    lambda t: ",".join(t).encode()
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Good lines and a few hostile ones (or none), a header (mostly a plain one), any line ends."""
    lines = draw(st.lists(GOOD_LINE, max_size=30))
    for at, line in draw(st.lists(st.tuples(st.integers(0, 30), st.one_of(LINE, st.just(b""))), max_size=3)):
        lines.insert(at, line)
    ends = draw(st.lists(st.sampled_from([b"\n"] * 12 + [b"\r\n", b"\r"]), min_size=34, max_size=34))
    header = draw(st.sampled_from([HEADER] * 4 + HEADERS))
    return _joined([header, *lines], ends, draw(st.booleans()))


JSON_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.sampled_from(IDS + STAMPS + NUMBERS),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
JSON_OBJECT = st.dictionaries(
    st.sampled_from(["event_id", "ts_utc", "f1", "f2", "f3", "extra"]), JSON_VALUE, max_size=6
)
JSON_LINE = st.one_of(
    st.builds(
        lambda event_id, ts, f1, f2: {"event_id": event_id, "ts_utc": ts, "f1": f1, "f2": f2},
        st.sampled_from(IDS),
        st.sampled_from(STAMPS),
        JSON_VALUE,
        JSON_VALUE,
    ).map(lambda o: json.dumps(o).encode()),
    JSON_OBJECT.map(lambda o: json.dumps(o).encode()),
    JSON_OBJECT.map(lambda o: json.dumps(o, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b'{"event_id": "\\ud800", "ts_utc": "x"}',
            b'{"f1": 1, "f1": 2}',
            b'{"event_id": "a"} {"event_id": "b"}',
            b'{"event_id": "\xff"}',
            b"[1, 2]",
            b'"text"',
            b"  ",
            b' {"event_id": "sp"} ',
            b'{"event_id": 7}',
            b'{"f1": NaN, "f2": Infinity}',
            b'{"f1": 1e400}',
            b'{"ts_utc": "2026-11-25T18:11:00"}',
            b'{"event_id": "x", "nested": {"a": 1}}',
            b"\xef\xbb\xbf{}",
        ]
    ),
    st.binary(max_size=12),
)


GOOD_JSON = st.builds(
    lambda i, ts, f1, f2: json.dumps({"event_id": i, "ts_utc": ts, "f1": f1, "f2": f2}).encode(),
    st.sampled_from(IDS),
    st.sampled_from(STAMPS),
    st.one_of(st.none(), st.floats(), st.integers(-(10**20), 10**20), st.sampled_from(NUMBERS)),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.booleans()),
)


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    """Good lines and a few hostile ones (or none), an optional BOM, any line ends."""
    lines = draw(st.lists(GOOD_JSON, max_size=30))
    for at, line in draw(st.lists(st.tuples(st.integers(0, 30), JSON_LINE), max_size=3)):
        lines.insert(at, line)
    ends = draw(st.lists(st.sampled_from([b"\n"] * 12 + [b"\r\n", b"\n\n"]), min_size=33, max_size=33))
    prefix = b"\xef\xbb\xbf" if draw(st.integers(0, 4)) == 0 else b""
    return prefix + _joined(lines, ends, draw(st.booleans()))


HOSTILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HOSTILE
@given(csv_files(), st.integers(1, 40), st.integers(1, 300), st.booleans())
def test_hostile_csv_gets_the_same_verdicts(data: bytes, chunk: int, block: int, gz: bool) -> None:
    name = "h.csv.gz" if gz else "h.csv"
    assert_same_verdicts(name, gzip.compress(data) if gz else data, chunk=chunk, block=block)


@HOSTILE
@given(jsonl_files(), st.integers(1, 40), st.integers(1, 300))
def test_hostile_jsonl_gets_the_same_verdicts(data: bytes, chunk: int, block: int) -> None:
    assert_same_verdicts("h.jsonl", data, chunk=chunk, block=block)


PARQUET_COLUMNS = {
    "event_id": st.sampled_from(
        [pa.array(["p1", "p2", "p1"]), pa.array(['q"uote', "b\\s", "n\nl"]), pa.array([1, 2, 3]), pa.nulls(3)]
    ),
    "ts_utc": st.sampled_from(
        [
            pa.array([START, START + timedelta(microseconds=7), None], pa.timestamp("us", tz="UTC")),
            pa.array([START, START - timedelta(days=1), START], pa.timestamp("ms", tz="UTC")),
            pa.array([START, START, START], pa.timestamp("ns", tz="UTC")),
            pa.array([START, START, START], pa.timestamp("us", tz="Asia/Tokyo")),
            pa.array([START.replace(tzinfo=None)] * 3, pa.timestamp("s")),
            pa.array([START.isoformat(), "soon", None]),
            pa.array([datetime(1, 1, 1, tzinfo=UTC)] * 3, pa.timestamp("us", tz="UTC")),
        ]
    ),
    "f1": st.sampled_from(
        [
            pa.array([1.5, float("nan"), float("inf")]),
            pa.array([1e300, -0.0, None]),
            pa.array([0.1, 2.0, 1e16], pa.float32()),
            pa.array([1, 2**62, None]),
            pa.array([True, False, None]),
            pa.array(["1.5", "x", ""]),
            pa.array([Decimal("1.5")] * 3),
        ]
    ),
    "extra": st.sampled_from([pa.array(["a", "b", "c"]), pa.array([[1], [2], []])]),
}


@st.composite
def parquet_files(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(st.sampled_from(sorted(PARQUET_COLUMNS)), unique=True, min_size=1))
    table = pa.table({name: draw(PARQUET_COLUMNS[name]) for name in names})
    table = pa.concat_tables([table] * draw(st.integers(1, 4)))
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=draw(st.integers(1, 5)))
    return out.getvalue()


@HOSTILE
@given(parquet_files(), st.integers(1, 40))
def test_hostile_parquet_gets_the_same_verdicts(data: bytes, chunk: int) -> None:
    assert_same_verdicts("h.parquet", data, chunk=chunk)


_ANY_STAMP = st.datetimes(datetime(1000, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999))
_EDGES = [1e-4, 9.999999999999999e-05, 1.5e-05, 0.00012, 1e16, 9999999999999998.0, 1.5e16, 123456789012345.6]
_ANY_FLOAT = (
    st.floats()
    | st.integers(-(10**17), 10**17).map(float)
    | st.floats(-1e4, 1e4)
    | st.sampled_from(_EDGES).map(lambda f: f * 1.0000001)
    | st.sampled_from(_EDGES)
)


@HOSTILE
@given(
    st.lists(st.tuples(st.none() | _ANY_FLOAT, st.none() | _ANY_STAMP), min_size=1, max_size=40),
    st.sampled_from([pa.float64(), pa.float32()]),
    st.sampled_from(["s", "ms", "us"]),
    st.sampled_from([None, "UTC"]),
    st.booleans(),
)
def test_parquet_numbers_and_timestamps_render_as_the_record_reader(
    rows: list[tuple[float | None, datetime | None]],
    floats: pa.DataType,
    unit: str,
    tz: str | None,
    whole: bool,
) -> None:
    """Any float (NaN, infinities, zeros, subnormal, huge, float32) and any timestamp of a plain
    column is rendered, as text and in the raw JSON, as Python renders it one value at a time."""
    stamps = [
        None if s is None else s.replace(microsecond=0 if whole else s.microsecond, tzinfo=tz and UTC)
        for _, s in rows
    ]
    table = pa.table(
        {
            "event_id": pa.array([f"e{i}" for i in range(len(rows))]),
            "ts_utc": pa.array(stamps, pa.timestamp("us", tz=tz)).cast(pa.timestamp(unit, tz=tz), safe=False),
            "f1": pa.array([r[0] for r in rows], pa.float64()).cast(floats, safe=False),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    assert_same_verdicts("n.parquet", out.getvalue())


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


_canonical_timestamp = st.builds(
    "{}-{}-{}T{}:{}:{}{}{}".format,
    st.sampled_from(["0000", "0001", "1969", "2024", "2023", "9999"]) | _digits(4),
    st.sampled_from(["01", "02", "12", "13", "00"]) | _digits(2),
    st.sampled_from(["01", "28", "29", "30", "31", "00"]) | _digits(2),
    st.sampled_from(["00", "23", "24"]) | _digits(2),
    _digits(2),
    st.sampled_from(["00", "59", "60"]) | _digits(2),
    st.sampled_from([""]) | st.integers(1, 6).flatmap(lambda n: _digits(n).map(lambda d: f".{d}")),
    st.sampled_from(["Z", "+00:00", "-01:00", "+19:59"])
    | st.builds("{}{}:{}".format, st.sampled_from("+-"), _digits(2), _digits(2)),
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_canonical_timestamp | st.sampled_from(["", " ", None]), min_size=1, max_size=20))
def test_timestamps_of_the_common_shape_parse_as_the_oracles(values: list[str | None]) -> None:
    """Arrow parses the timestamps most sources write; its results (and every refusal) are pandas'."""
    series = pd.Series(values, dtype="string", index=range(7, 7 + len(values)))
    parsed, given_ = contract.parse_timestamps(series)
    expected, expected_given = contract_oracle.parse_timestamps(series)
    pd.testing.assert_series_equal(parsed, expected)
    assert list(given_) == list(expected_given)


_number = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["", "+", "-"]),
    st.sampled_from(["0", "1", "007", ".5", "5.", "1.25", ""]) | _digits(3),
    st.sampled_from(["", "e5", "E-3", "e400", "e-400", "e"]),
    st.sampled_from(["", " ", "x"]),
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_number | st.sampled_from(["", "inf", "nan", None]), min_size=1, max_size=20))
def test_numbers_without_spaces_parse_as_the_oracles(values: list[str | None]) -> None:
    """Columns of plain numbers are parsed in Arrow alone; the results are those of the full rules."""
    series = pd.Series(values, dtype="string")
    parsed, invalid = contract.parse_numbers(series)
    expected, expected_invalid = contract.numbers_of_any_text(series)
    assert parsed.tobytes() == expected.tobytes()
    assert list(invalid) == list(expected_invalid)
