"""The labels' contract: every label record accepted or rejected with its first reason, the last
delivery of an id in read order kept, and the label landing partition read like event files."""

from __future__ import annotations

import gzip
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etlml.ingest import formats, label_contract, landing
from etlml.ingest.label_contract import Rules, apply
from etlml.interval import Interval
from etlml.records import LABEL_RECORD, REJECTED

INTERVAL = Interval(datetime(2026, 11, 25, 18, 30, tzinfo=UTC), datetime(2026, 11, 25, 18, 40, tzinfo=UTC))
RULES = Rules(
    INTERVAL.end, now=datetime(2026, 11, 25, 18, 41, tzinfo=UTC), max_future_skew=timedelta(minutes=5)
)
OBSERVED = "2026-11-25T18:35:00+00:00"
CSV_HEADER = "event_id,y_true,observed_at\n"


def labels_csv(*rows: str) -> bytes:
    return (CSV_HEADER + "".join(r + "\n" for r in rows)).encode()


def read(name: str, data: bytes) -> pd.DataFrame:
    return landing.read_file(f"labels/2026-11-25/1830/{name}", data, fields=formats.LABELS)


def test_good_labels_are_accepted_with_provenance_and_raw_bytes() -> None:
    checked = apply(
        read("a.csv", labels_csv(f"e1,1.5,{OBSERVED}", "e2,-2e-3,2026-11-25T19:35:00+01:00")), RULES
    )
    assert checked.valid["event_id"].tolist() == ["e1", "e2"]
    assert checked.valid["y_true"].tolist() == [1.5, -0.002]
    assert checked.valid["observed_at"].tolist() == [pd.Timestamp(OBSERVED)] * 2  # +01:00 is 18:35 UTC
    assert checked.valid["row_number"].tolist() == [2, 3]
    assert checked.valid["raw"].tolist() == [
        f"e1,1.5,{OBSERVED}".encode(),
        b"e2,-2e-3,2026-11-25T19:35:00+01:00",
    ]
    assert (checked.counts.extracted, checked.counts.accepted, checked.counts.rejected) == (2, 2, 0)
    assert list(checked.rejected.columns) == list(REJECTED.names)


@pytest.mark.parametrize(
    ("row", "reason", "message"),
    [
        (f",1.0,{OBSERVED}", "missing_event_id", "event_id is blank"),
        (f"e\x01x,1.0,{OBSERVED}", "invalid_event_id", "control characters"),
        (f"e1,,{OBSERVED}", "invalid_number", "y_true is missing"),
        (f"e1,abc,{OBSERVED}", "invalid_number", "y_true is not a finite number: 'abc'"),
        (f"e1,inf,{OBSERVED}", "invalid_number", "y_true is not a finite number"),
        (f"e1,NaN,{OBSERVED}", "invalid_number", "y_true is not a finite number"),
        (f"e1,1e300,{OBSERVED}", "out_of_range", "ETLML_MAX_ABS_VALUE"),
        ("e1,1.0,", "invalid_timestamp", "observed_at is missing"),
        ("e1,1.0,2026-11-25T18:35:00", "invalid_timestamp", "with a UTC offset"),
        ("e1,1.0,2026-02-30T18:35:00Z", "invalid_timestamp", "with a UTC offset"),
        ("e1,1.0,2026-11-25T19:00:00Z", "future_timestamp", "more than 300 s in the future"),
        ("e1,1.0", "malformed_record", "2 fields where the header has 3"),
    ],
)
def test_each_rule_rejects_with_its_reason(row: str, reason: str, message: str) -> None:
    checked = apply(read("a.csv", labels_csv(row)), RULES)
    assert checked.valid.empty
    [rejected] = checked.rejected.to_dict("records")
    assert (rejected["reason"], rejected["row_number"]) == (reason, 2)
    assert message in rejected["message"]
    assert rejected["raw"] == row.encode()
    assert checked.counts.by_reason == {reason: 1}
    assert checked.counts.balanced


def test_an_old_observation_is_a_label_like_any_other() -> None:
    checked = apply(read("a.csv", labels_csv("e1,1.0,2026-11-01T00:00:00Z")), RULES)
    assert checked.valid["event_id"].tolist() == ["e1"]


def test_the_last_delivery_in_read_order_wins_and_the_others_are_duplicates() -> None:
    first = read("a.csv", labels_csv(f"e1,1.0,{OBSERVED}", f"e2,2.0,{OBSERVED}", f"e1,1.1,{OBSERVED}"))
    second = read("b.jsonl", json.dumps({"event_id": "e1", "y_true": 1.2, "observed_at": OBSERVED}).encode())
    checked = apply(
        pd.concat([second, first], ignore_index=True), RULES
    )  # order of the frame does not matter
    assert dict(zip(checked.valid["event_id"], checked.valid["y_true"], strict=True)) == {
        "e1": 1.2,
        "e2": 2.0,
    }
    duplicates = checked.rejected[checked.rejected["reason"] == "duplicate"]
    assert duplicates["row_number"].tolist() == [2, 4]
    assert all("kept from 'labels/2026-11-25/1830/b.jsonl' row 1" in m for m in duplicates["message"])
    assert (checked.counts.accepted, checked.counts.rejected, checked.counts.deduplicated) == (2, 0, 2)
    assert checked.counts.by_reason == {}


def test_a_rejected_record_does_not_supersede_a_good_one() -> None:
    checked = apply(read("a.csv", labels_csv(f"e1,1.0,{OBSERVED}", f"e1,oops,{OBSERVED}")), RULES)
    assert checked.valid["y_true"].tolist() == [1.0]
    assert checked.rejected["reason"].tolist() == ["invalid_number"]


def test_a_csv_without_the_label_fields_is_unparseable_as_a_whole() -> None:
    checked = apply(read("a.csv", b"event_id,ts_utc,f1\ne1,2026-11-25T18:35:00Z,1\n"), RULES)
    [rejected] = checked.rejected.to_dict("records")
    assert (rejected["reason"], rejected["row_number"]) == ("unparseable_file", 0)
    assert "must name event_id, y_true and observed_at" in rejected["message"]


def test_every_format_gives_the_same_label(tmp_path: Path) -> None:
    record = {"event_id": "e1", "y_true": 0.25, "observed_at": OBSERVED, "note": "x"}
    line = json.dumps(record).encode() + b"\n"
    text = labels_csv(f"e1,0.25,{OBSERVED}")
    table = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([record]), table)
    for name, data in [
        ("a.jsonl", line),
        ("a.jsonl.gz", gzip.compress(line)),
        ("a.csv", text),
        ("a.csv.gz", gzip.compress(text)),
        ("a.parquet", table.getvalue()),
    ]:
        checked = apply(read(name, data), RULES)
        assert checked.valid[["event_id", "y_true", "observed_at"]].to_dict("records") == [
            {"event_id": "e1", "y_true": 0.25, "observed_at": pd.Timestamp(OBSERVED)}
        ], name
    assert apply(read("a.jsonl", line), RULES).counts.extra_fields == {"note": 1}


def test_unknown_events_move_from_accepted_to_rejected() -> None:
    counts = apply(read("a.csv", labels_csv(f"e1,1,{OBSERVED}", f"e2,2,{OBSERVED}", "e3,x,")), RULES).counts
    moved = label_contract.with_unknown(counts, 1)
    assert (moved.extracted, moved.accepted, moved.rejected, moved.deduplicated) == (3, 1, 2, 0)
    assert moved.by_reason == {"invalid_number": 1, "unknown_event": 1}
    assert moved.balanced
    assert label_contract.with_unknown(counts, 0) == counts


def test_no_records_give_empty_results() -> None:
    checked = apply(LABEL_RECORD.empty(), RULES)
    assert checked.valid.empty and checked.rejected.empty
    assert checked.counts.extracted == 0


def write(root: Path, key: str, name: str, data: bytes) -> Path:
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def test_label_partitions_live_under_labels_and_events_never_see_them(tmp_path: Path) -> None:
    write(tmp_path, "labels/2026-11-25/1830", "l.csv", labels_csv(f"e1,1,{OBSERVED}"))
    write(tmp_path, "2026-11-25/1830", "e.jsonl", json.dumps({"event_id": "x", "ts_utc": OBSERVED}).encode())
    events = landing.LandingFileSource(tmp_path.as_uri())
    labels = landing.LandingFileSource(tmp_path.as_uri(), fields=formats.LABELS, prefix=landing.LABELS_FOLDER)
    assert events.records(INTERVAL)["source_file"].tolist() == ["2026-11-25/1830/e.jsonl"]
    assert events.manifest(INTERVAL) == {
        "2026-11-25/1830/e.jsonl": os.path.getsize(tmp_path / "2026-11-25/1830/e.jsonl")
    }
    got = labels.records(INTERVAL)
    assert got["source_file"].tolist() == ["labels/2026-11-25/1830/l.csv"]
    assert list(got.columns) == list(LABEL_RECORD.names)
    assert labels.manifest(INTERVAL) == {"labels/2026-11-25/1830/l.csv": len(labels_csv(f"e1,1,{OBSERVED}"))}
    assert str(landing.partition("file:///r", INTERVAL, "labels")) == "file:///r/labels/2026-11-25/1830"


def test_a_symlinked_labels_folder_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere, "2026-11-25/1830", "l.csv", labels_csv(f"e1,1,{OBSERVED}"))
    root = tmp_path / "root"
    root.mkdir()
    (root / "labels").symlink_to(elsewhere)
    labels = landing.LandingFileSource(root.as_uri(), fields=formats.LABELS, prefix=landing.LABELS_FOLDER)
    checked = apply(labels.records(INTERVAL), RULES)
    assert checked.valid.empty
    assert checked.rejected[["source_file", "reason"]].to_dict("records") == [
        {"source_file": "labels/2026-11-25/1830", "reason": "unsupported_file"}
    ]


def test_a_label_file_past_the_size_limit_is_quarantined_unread(tmp_path: Path) -> None:
    data = labels_csv(*(f"e{i},1,{OBSERVED}" for i in range(50)))
    write(tmp_path, "labels/2026-11-25/1830", "big.csv", data)
    labels = landing.LandingFileSource(
        tmp_path.as_uri(), max_file_bytes=100, fields=formats.LABELS, prefix=landing.LABELS_FOLDER
    )
    checked = apply(labels.records(INTERVAL), RULES)
    assert checked.rejected["reason"].tolist() == ["file_too_large"]
    assert checked.rejected["raw"].tolist() == [data]
