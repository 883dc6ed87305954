"""Landing files: formats by extension, provenance, and one table row per thing a reader can reject."""

from __future__ import annotations

import gzip
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etlml.ingest import contract, landing
from etlml.ingest import source as sources
from etlml.interval import Interval
from etlml.records import RECORD
from tests.landing_files import Expected, csv_text, jsonl, mixed_partition, parquet

INTERVAL = Interval(datetime(2026, 11, 25, 18, 10, tzinfo=UTC), datetime(2026, 11, 25, 18, 20, tzinfo=UTC))
KEY = "2026-11-25/1810"
RULES = contract.Rules(
    INTERVAL, now=datetime(2026, 11, 25, 18, 21, tzinfo=UTC), max_future_skew=timedelta(minutes=5)
)
TS = "2026-11-25T18:15:00+00:00"
GOOD = {"event_id": "e1", "ts_utc": TS, "f1": 1.0, "f2": None, "f3": 3}


def test_partition_is_the_utc_start_of_the_interval() -> None:
    assert landing.partition_key(INTERVAL) == KEY
    shifted = Interval(INTERVAL.start.astimezone(ZoneInfo("Asia/Tokyo")), INTERVAL.end)
    assert landing.partition_key(shifted) == KEY
    assert str(landing.partition("file:///landing", INTERVAL)) == "file:///landing/2026-11-25/1810"


FORMATS = [
    ("x.jsonl", jsonl([GOOD])),
    ("x.JSONL", jsonl([GOOD])),
    ("x.jsonl.gz", gzip.compress(jsonl([GOOD]))),
    ("x.csv", csv_text(["event_id", "ts_utc", "f1", "f2", "f3"], [["e1", TS, "1.0", "", "3"]])),
    ("x.csv.gz", gzip.compress(csv_text(["ts_utc", "event_id", "f3", "f1"], [[TS, "e1", "3", "1.0"]]))),
    ("x.parquet", parquet([GOOD])),
]


@pytest.mark.parametrize(("name", "data"), FORMATS, ids=[n for n, _ in FORMATS])
def test_every_format_gives_the_same_event(name: str, data: bytes) -> None:
    records = landing.read_file(f"{KEY}/{name}", data)
    assert list(records.columns) == list(RECORD.names)
    assert records["source_file"].tolist() == [f"{KEY}/{name}"]
    assert records["row_number"].tolist() == [2 if ".csv" in name.lower() else 1]
    checked = contract.apply(records, RULES)
    expected = pd.DataFrame(
        {"event_id": ["e1"], "ts_utc": [pd.Timestamp(TS)], "f1": [1.0], "f2": [float("nan")], "f3": [3.0]}
    ).astype({"event_id": "string", "ts_utc": "datetime64[us, UTC]"})
    pd.testing.assert_frame_equal(checked.valid, expected)


# One row per thing a reader itself rejects: file name, content, reason, row_number, message part.
READER_TABLE: list[tuple[str, str, bytes, str, int, str]] = [
    ("unknown extension", "notes.txt", b"hello", "unsupported_file", 0, "unsupported extension"),
    ("no extension", "README", b"", "unsupported_file", 0, "unsupported extension"),
    ("bad gzip", "x.jsonl.gz", b"not gzip", "unparseable_file", 0, "not gzip data"),
    (
        "truncated gzip",
        "x.csv.gz",
        gzip.compress(b"event_id,ts_utc\n" * 50)[:20],
        "unparseable_file",
        0,
        "gzip",
    ),
    ("bad parquet", "x.parquet", b"PAR1garbagePAR1", "unparseable_file", 0, "not a readable Parquet file"),
    (
        "csv without header fields",
        "x.csv",
        b"e1,2026-11-25T18:15:00Z,1,2,3\n",
        "unparseable_file",
        0,
        "must name",
    ),
    (
        "csv header twice a name",
        "x.csv",
        b"event_id,ts_utc,f1,f1\ne,t,1,2\n",
        "unparseable_file",
        0,
        "more than once",
    ),
    ("csv header not UTF-8", "x.csv", b"event_id,ts_utc,\xff\n", "unparseable_file", 0, "not valid UTF-8"),
    ("json syntax", "x.jsonl", b'{"event_id": "e1",', "malformed_record", 1, "not valid JSON"),
    ("json array", "x.jsonl", b"[1, 2]", "malformed_record", 1, "a JSON list, not an object"),
    ("json scalar", "x.jsonl", b'"e1"', "malformed_record", 1, "a JSON str, not an object"),
    ("json raw NUL", "x.jsonl", b'{"event_id": "a\x00b"}', "malformed_record", 1, "not valid JSON"),
    ("json too deep", "x.jsonl", b"[" * 100_000 + b"]" * 100_000, "malformed_record", 1, "not valid JSON"),
    (
        "json not UTF-8",
        "x.jsonl",
        b'{"event_id": "\xff"}',
        "invalid_encoding",
        1,
        "not valid UTF-8 at byte 14",
    ),
    ("json lone surrogate", "x.jsonl", b'{"event_id": "\\ud800"}', "invalid_encoding", 1, "surrogate"),
    ("json numeric id", "x.jsonl", b'{"event_id": 42}', "invalid_event_id", 1, "must be a string, not int"),
    ("json object id", "x.jsonl", b'{"event_id": {"a": 1}}', "invalid_event_id", 1, "not dict"),
    (
        "csv row too wide",
        "x.csv",
        b"event_id,ts_utc\ne1,t,extra\n",
        "malformed_record",
        2,
        "3 fields where the header has 2",
    ),
    ("csv row too narrow", "x.csv", b"event_id,ts_utc,f1\ne1,t\n", "malformed_record", 2, "2 fields"),
    ("csv row not UTF-8", "x.csv", b"event_id,ts_utc\ne\xff1,t\n", "invalid_encoding", 2, "not valid UTF-8"),
]


@pytest.mark.parametrize(
    ("name", "data", "reason", "row", "message"),
    [r[1:] for r in READER_TABLE],
    ids=[r[0] for r in READER_TABLE],
)
def test_each_reader_rule_rejects_with_its_reason(
    name: str, data: bytes, reason: str, row: int, message: str
) -> None:
    checked = contract.apply(landing.read_file(f"{KEY}/{name}", data), RULES)
    assert checked.valid.empty
    rejected = checked.rejected
    assert rejected["reason"].tolist() == [reason]
    assert rejected["row_number"].tolist() == [row]
    assert message in rejected["message"].iloc[0]
    if row == 0:  # a whole file: its bytes as they were found
        assert rejected["raw"].iloc[0] == data


def test_reader_reasons_are_all_covered() -> None:
    too_large = {"file_too_large"}  # needs a limit: test_files_past_the_size_limit_are_quarantined_...
    assert {r[3] for r in READER_TABLE} | too_large == set(contract.READER_REASONS)


def test_jsonl_rows_are_line_numbers_and_raw_is_the_line() -> None:
    data = (
        b'\xef\xbb\xbf{"event_id": "a", "ts_utc": "' + TS.encode() + b'"}\n\n   \r\nnope\r\n{"event_id": "b"}'
    )
    records = landing.read_file(f"{KEY}/x.jsonl", data)
    assert records["row_number"].tolist() == [1, 4, 5]
    assert records["raw"].tolist()[1:] == [b"nope\r", b'{"event_id": "b"}']


def test_csv_rows_start_where_the_row_starts() -> None:
    data = (
        b'event_id,ts_utc,note\r\na,"'
        + TS.encode()
        + b'",x\r\n\r\n"b\nc","t",y\r\nd,t,"multi\n\nline"\n\re,t,z'
    )
    records = landing.read_file(f"{KEY}/x.csv", data)
    assert records["row_number"].tolist() == [2, 4, 6, 10]  # a lone CR ends line 9
    assert records["raw"].tolist() == [
        b'a,"' + TS.encode() + b'",x',
        b'"b\nc","t",y',
        b'd,t,"multi\n\nline"',
        b"e,t,z",
    ]
    assert records["event_id"].tolist() == ["a", "b\nc", "d", "e"]
    assert json.loads(records["extra_fields"].iloc[0]) == ["note"]


def test_csv_keeps_nul_bytes_and_huge_fields() -> None:
    huge = "y" * 500_000
    data = f"event_id,ts_utc\na\x00b,{TS}\n{huge},{TS}\n".encode()
    checked = contract.apply(landing.read_file(f"{KEY}/x.csv", data), RULES)
    assert checked.rejected["reason"].tolist() == ["invalid_event_id", "invalid_event_id"]
    assert checked.rejected["raw"].tolist() == [f"a\x00b,{TS}".encode(), f"{huge},{TS}".encode()]


def test_parquet_values_of_any_type_and_rows_as_json() -> None:
    table = pa.table(
        {
            "event_id": ["p1", "p2", "p3"],
            "ts_utc": pa.array([datetime(2026, 11, 25, 18, 15)] * 3, pa.timestamp("us", tz="UTC")),
            "f1": pa.array([1, 2, 3], pa.int32()),
            "f2": ["0.5", "bad", None],
            "f3": [True, None, None],
            "extra": [{"k": 1}, None, None],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    checked = contract.apply(landing.read_file(f"{KEY}/x.parquet", buffer.getvalue()), RULES)
    assert checked.valid["event_id"].tolist() == ["p3"]
    assert checked.rejected["reason"].tolist() == ["invalid_number", "invalid_number"]
    assert "f3 is not a finite number: 'true'" in checked.rejected["message"].iloc[0]
    row = json.loads(checked.rejected["raw"].iloc[0])
    assert row["event_id"] == "p1" and row["extra"] == {"k": 1}
    assert checked.counts.extra_fields == {"extra": 3}


def test_naive_parquet_timestamps_have_no_offset() -> None:
    table = pa.table(
        {"event_id": ["n"], "ts_utc": pa.array([datetime(2026, 11, 25, 18, 15)], pa.timestamp("us"))}
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    checked = contract.apply(landing.read_file(f"{KEY}/x.parquet", buffer.getvalue()), RULES)
    assert checked.rejected["reason"].tolist() == ["invalid_timestamp"]


def test_source_reads_a_partition_and_skips_markers(tmp_path: Path) -> None:
    expected: Expected = mixed_partition(tmp_path, INTERVAL.start, KEY)
    (tmp_path / KEY / "subfolder").mkdir()
    records = landing.LandingFileSource(tmp_path.as_uri()).records(INTERVAL)
    files = sorted(set(records["source_file"]))
    assert files == [f"{KEY}/{name}" for name in expected.files]
    checked = contract.apply(records, contract.Rules(INTERVAL, datetime.now(UTC), timedelta(minutes=5)))
    assert set(checked.valid["event_id"]) == expected.loaded
    got = dict(
        zip(
            zip(checked.rejected["source_file"], checked.rejected["row_number"], strict=True),
            checked.rejected["reason"],
            strict=True,
        )
    )
    assert got == expected.rejected
    assert checked.counts.extracted == expected.extracted
    assert checked.counts.extra_fields == {"source_system": 63}


def test_a_missing_or_empty_partition_gives_zero_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = landing.LandingFileSource(tmp_path.as_uri())
    with caplog.at_level("INFO", logger="etlml.ingest.landing"):
        missing = source.records(INTERVAL)
    assert missing.empty and list(missing.columns) == list(RECORD.names)
    assert "does not exist: zero records" in caplog.text
    (tmp_path / KEY).mkdir(parents=True)
    (tmp_path / KEY / "_SUCCESS").touch()
    assert source.records(INTERVAL).empty
    assert "holds no files: zero records" in caplog.text
    assert contract.apply(source.records(INTERVAL), RULES).counts.extracted == 0


def test_empty_files_hold_no_records() -> None:
    for name, data in [
        ("a.jsonl", b""),
        ("a.csv", b""),
        ("a.csv", b"event_id,ts_utc\n"),
        ("a.jsonl.gz", gzip.compress(b"")),
    ]:
        assert landing.read_file(f"{KEY}/{name}", data).empty, name


def quarantined(records: pd.DataFrame) -> dict[str, tuple[str, int, str, bytes]]:
    """file name -> (reason, row_number, message, raw) of each whole-file record the contract rejects."""
    rejected = contract.apply(records, RULES).rejected
    return {
        f.rsplit("/", 1)[-1]: (reason, n, message, raw)
        for f, n, reason, message, raw in zip(
            rejected["source_file"],
            rejected["row_number"],
            rejected["reason"],
            rejected["message"],
            rejected["raw"],
            strict=True,
        )
        if n == landing.WHOLE_FILE
    }


def test_symlinks_are_quarantined_without_opening_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "events.jsonl").write_bytes(jsonl([GOOD]))
    (outside / "credentials").write_bytes(b"WAREHOUSE_PASSWORD=hunter2\n")
    root = tmp_path / "landing"
    folder = root / KEY
    folder.mkdir(parents=True)
    (folder / "real.jsonl").write_bytes(jsonl([{**GOOD, "event_id": "real"}]))
    (folder / "linked.jsonl").symlink_to(outside / "events.jsonl")
    (folder / "secrets.txt").symlink_to(outside / "credentials")
    (folder / "folder.jsonl").symlink_to(outside, target_is_directory=True)
    (folder / "dangling.csv").symlink_to(outside / "gone.csv")
    records = landing.LandingFileSource(root.as_uri()).records(INTERVAL)
    assert contract.apply(records, RULES).valid["event_id"].tolist() == ["real"]
    got = quarantined(records)
    assert sorted(got) == ["dangling.csv", "folder.jsonl", "linked.jsonl", "secrets.txt"]
    for name, (reason, _, message, raw) in got.items():
        assert reason == "unsupported_file", name
        assert "symbolic link" in message, name
        assert raw == b"", name
    assert all(b"hunter2" not in bytes(r) for r in records["raw"].dropna())


def test_a_symlinked_partition_folder_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.jsonl").write_bytes(jsonl([GOOD]))
    (elsewhere / "notes.txt").write_bytes(b"private")
    root = tmp_path / "landing"
    (root / KEY).parent.mkdir(parents=True)
    (root / KEY).symlink_to(elsewhere, target_is_directory=True)
    source = landing.LandingFileSource(root.as_uri())
    assert source.partition_exists(INTERVAL)
    records = source.records(INTERVAL)
    checked = contract.apply(records, RULES)
    assert checked.valid.empty
    assert checked.rejected["source_file"].tolist() == [KEY]
    assert checked.rejected["reason"].tolist() == ["unsupported_file"]
    assert "symbolic link" in checked.rejected["message"].iloc[0]
    assert checked.rejected["raw"].tolist() == [b""]


def test_files_past_the_size_limit_are_quarantined_with_their_first_bytes(tmp_path: Path) -> None:
    folder = tmp_path / KEY
    folder.mkdir(parents=True)
    bomb = gzip.compress(b" " * 3_000_000)  # a few KB that inflate to 3 MB
    big = jsonl([{**GOOD, "event_id": f"big-{i}"} for i in range(30_000)])  # about 2.6 MB as stored
    (folder / "bomb.jsonl.gz").write_bytes(bomb)
    (folder / "big.jsonl").write_bytes(big)
    (folder / "big.txt").write_bytes(big)
    (folder / "ok.csv").write_bytes(csv_text(["event_id", "ts_utc"], [["ok", TS]]))
    source = landing.LandingFileSource(tmp_path.as_uri(), max_file_bytes=1_000_000)
    records = source.records(INTERVAL)
    assert contract.apply(records, RULES).valid["event_id"].tolist() == ["ok"]  # the rest still loads
    got = quarantined(records)
    reasons = {name: reason for name, (reason, *_) in got.items()}
    # an unknown format is told first: no size would make it readable
    assert reasons == {
        "big.jsonl": "file_too_large",
        "big.txt": "unsupported_file",
        "bomb.jsonl.gz": "file_too_large",
    }
    assert got["big.jsonl"][3] == big[: landing.RAW_HEAD_BYTES]
    assert got["big.txt"][3] == big[: landing.RAW_HEAD_BYTES]  # a whole-file record holds 64 KiB at most
    assert f"the raw value is its first {landing.RAW_HEAD_BYTES} bytes" in got["big.txt"][2]
    assert f"{len(big)} bytes" in got["big.jsonl"][2]
    assert "ETLML_MAX_FILE_BYTES=1000000" in got["big.jsonl"][2]
    assert got["bomb.jsonl.gz"][3] == bomb  # smaller than RAW_HEAD_BYTES as stored: all of it
    assert "decompressed" in got["bomb.jsonl.gz"][2] and "ETLML_MAX_FILE_BYTES" in got["bomb.jsonl.gz"][2]
    assert landing.RAW_HEAD_BYTES == 64 * 1024


def test_the_size_limit_counts_bytes_as_stored_and_decompressed(tmp_path: Path) -> None:
    folder = tmp_path / KEY
    folder.mkdir(parents=True)
    content = jsonl([{**GOOD, "event_id": f"e-{i}"} for i in range(100)])
    (folder / "exact.jsonl").write_bytes(content)
    (folder / "exact.jsonl.gz").write_bytes(gzip.compress(content.replace(b"e-", b"g-")))
    source = landing.LandingFileSource(tmp_path.as_uri(), max_file_bytes=len(content))
    assert contract.apply(source.records(INTERVAL), RULES).counts.accepted == 200  # at the limit: read
    smaller = landing.LandingFileSource(tmp_path.as_uri(), max_file_bytes=len(content) - 1)
    got = quarantined(smaller.records(INTERVAL))
    assert {name: reason for name, (reason, *_) in got.items()} == {
        "exact.jsonl": "file_too_large",
        "exact.jsonl.gz": "file_too_large",
    }


def test_a_file_without_records_is_logged_as_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / KEY
    folder.mkdir(parents=True)
    (folder / "blank.jsonl").write_bytes(b"   \n\n \t \r\n" * 1000)
    (folder / "blank.jsonl.gz").write_bytes(gzip.compress(b" " * 100_000))
    (folder / "header.csv").write_bytes(b"event_id,ts_utc\n")
    with caplog.at_level("INFO", logger="etlml.ingest.landing"):
        records = landing.LandingFileSource(tmp_path.as_uri()).records(INTERVAL)
    assert records.empty
    warned = {r.getMessage().split(":")[0] for r in caplog.records if r.levelname == "WARNING"}
    assert warned == {
        "blank.jsonl holds no records",
        "blank.jsonl.gz holds no records",
        "header.csv holds no records",
    }
    assert "10000 bytes" in caplog.text and "100000 bytes decompressed" in caplog.text


def test_the_source_streams_a_partition_in_chunks_of_records(tmp_path: Path) -> None:
    expected = mixed_partition(tmp_path, INTERVAL.start, KEY)
    source = landing.LandingFileSource(tmp_path.as_uri(), chunk_records=50)
    reading = sources.read(source, INTERVAL)
    assert reading.streamed and reading.found
    chunks = list(reading.chunks)
    assert all(0 < len(chunk) <= 50 for chunk in chunks)
    assert len(chunks) >= expected.extracted // 50
    streamed = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(streamed, source.records(INTERVAL))
    assert list(zip(streamed["source_file"], streamed["row_number"], strict=True)) == sorted(
        zip(streamed["source_file"], streamed["row_number"], strict=True)
    )  # files in name order, rows in file order
    # the count comes before the records are read: the lines of each file, an upper bound
    assert expected.extracted <= reading.total <= expected.extracted + 10


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "credentials"
    target.write_bytes(b"secret")
    listed = tmp_path / "a.jsonl"
    listed.symlink_to(target)  # what was a regular file when listed
    entry = landing.LandingFile(f"{KEY}/a.jsonl", 6, local=str(listed))
    with pytest.raises(landing.LandingFileChangedError, match="a symbolic link is never followed"):
        list(landing.file_records(entry, 1000, 10))


def test_a_file_cut_short_while_it_is_read_fails_the_read_instead_of_loading_half(tmp_path: Path) -> None:
    lines = [{**GOOD, "event_id": f"e-{i}-{os.urandom(24).hex()}"} for i in range(60_000)]
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(list(lines))))
    entry = landing.LandingFile(f"{KEY}/a.jsonl.gz", path.stat().st_size, local=str(path))
    chunks = landing.file_records(entry, 10**9, chunk_records=100)
    assert len(next(chunks)) == 100  # the first pass found the file whole and readable
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)  # the upstream rewrites it meanwhile
    with pytest.raises(landing.LandingFileChangedError, match="changed while it was read"):
        list(chunks)
