"""Hypothesis-generated garbage through the landing source and the contract.

Whatever the bytes, reading and checking never raise; every record is accepted, rejected or
deduplicated (the invariant); what is rejected can be written to Parquet and encoded for COPY into
PostgreSQL (no NUL or lone surrogate in a text column); and the only error left is the gate's.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etlml import FEATURES, quality, storage
from etlml.ingest import contract, landing
from etlml.interval import Interval
from etlml.records import REJECTED
from etlml.warehouse import pgcopy
from etlml.warehouse.writes import PROCESSED_STAGE, REJECTED_STAGE
from tests.helpers import write_frame

INTERVAL = Interval(datetime(2026, 11, 25, 18, 0, tzinfo=UTC), datetime(2026, 11, 25, 18, 10, tzinfo=UTC))
KEY = "2026-11-25/1800"
RULES = contract.Rules(
    INTERVAL, now=datetime(2026, 11, 25, 18, 11, tzinfo=UTC), max_future_skew=timedelta(minutes=5)
)
FIELDS = ["event_id", "ts_utc", "f1", "f2", "f3"]
GARBAGE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.sampled_from(["a.jsonl", "b.csv", "c.parquet", "d.jsonl.gz", "e.csv.gz", "f.bin", "g"])
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(2026, 11, 25, 17, 55),
        max_value=datetime(2026, 11, 25, 18, 15),
        timezones=st.just(UTC),
    ).map(datetime.isoformat),
    st.text(max_size=30),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), timestamps
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
json_records = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "event_id": st.one_of(st.text(max_size=10), st.sampled_from(["e1", "e2", "e3"]), json_scalars),
            "ts_utc": timestamps,
            "f1": json_scalars,
            "f2": json_scalars,
            "f3": st.one_of(st.floats(), json_scalars),
            "other": json_values,
        },
    ),
)
csv_cells = st.one_of(st.text(max_size=12), st.sampled_from(["", "1.5", "e1", "e2", "nan"]), timestamps)


def check(records: pd.DataFrame) -> contract.Checked:
    """Everything a run does with records short of the database, asserting what must always hold."""
    checked = contract.apply(records, RULES)
    assert checked.counts.balanced
    assert len(checked.valid) + len(checked.rejected) == len(records)
    assert checked.valid["event_id"].is_unique
    for column in ("source_file", "event_id", "reason", "message"):
        for text in checked.rejected[column].dropna():
            assert "\x00" not in text
            text.encode("utf-8")  # no lone surrogates
    assert all(isinstance(raw, bytes) for raw in checked.rejected["raw"])
    assert set(checked.rejected["reason"]) <= set(contract.REASONS)
    # storable as the run's intermediate files, and encodable for PostgreSQL's COPY
    for frame in (checked.valid, checked.rejected):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), io.BytesIO())
    pgcopy.encode(checked.rejected, REJECTED_STAGE)
    pgcopy.encode(
        checked.valid.assign(
            **{f"{f}_z": 0.0 for f in FEATURES}, **{f"{f}_imputed": False for f in FEATURES}
        ),
        PROCESSED_STAGE,
    )
    gate(checked.counts)
    return checked


def gate(counts: contract.Counts) -> None:
    """The gate fails a run exactly when more than 5 % of its records were rejected, saying why."""
    audit = quality.Audit(source="landing", counts=counts, max_rejected_share=0.05)
    quality.check_balanced(audit, INTERVAL)
    if counts.extracted and counts.rejected / counts.extracted > 0.05:
        with pytest.raises(quality.QualityGateError, match="top reasons"):
            quality.enforce(audit, INTERVAL)
    else:
        quality.enforce(audit, INTERVAL)


def test_the_gate_fires_on_an_unreadable_file_and_passes_a_clean_one() -> None:
    """Both branches of :func:`gate` above are taken, whatever hypothesis generates."""
    unreadable = contract.apply(landing.read_file(f"{KEY}/x.bin", b"\x00"), RULES).counts
    assert (unreadable.extracted, unreadable.rejected) == (1, 1)
    with pytest.raises(quality.QualityGateError, match="1 of 1 records"):
        quality.enforce(quality.Audit("landing", unreadable, 0.05), INTERVAL)
    line = json.dumps({"event_id": "e1", "ts_utc": "2026-11-25T18:01:00+00:00", "f1": 1, "f2": 2, "f3": 3})
    clean = contract.apply(landing.read_file(f"{KEY}/x.jsonl", line.encode()), RULES).counts
    assert (clean.extracted, clean.rejected) == (1, 0)
    quality.enforce(quality.Audit("landing", clean, 0.05), INTERVAL)


@GARBAGE
@given(name=names, data=st.binary(max_size=600), gzipped=st.booleans())
def test_random_bytes(name: str, data: bytes, gzipped: bool) -> None:
    payload = gzip.compress(data) if gzipped and name.endswith(".gz") else data
    checked = check(landing.read_file(f"{KEY}/{name}", payload))
    if name.endswith((".bin", "g")):
        assert checked.rejected["reason"].tolist() == ["unsupported_file"]


@GARBAGE
@given(records=st.lists(json_records, max_size=15), junk=st.lists(st.binary(max_size=30), max_size=3))
def test_random_json_lines(records: list[Any], junk: list[bytes]) -> None:
    lines = [json.dumps(r).encode() for r in records] + [j.replace(b"\n", b"") for j in junk]
    content = b"\n".join(lines)
    checked = check(landing.read_file(f"{KEY}/x.jsonl", content))
    # a UTF-8 byte order mark that starts the file is not part of its first line
    content = content.removeprefix(b"\xef\xbb\xbf")
    assert checked.counts.extracted == sum(1 for line in content.split(b"\n") if line.strip())


@GARBAGE
@given(
    header=st.lists(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), max_size=7).map(
        lambda h: h if {"event_id", "ts_utc"} <= set(h) else ["event_id", "ts_utc", *h]
    ),
    rows=st.lists(st.lists(csv_cells, max_size=8), max_size=15),
    gzipped=st.booleans(),
)
def test_random_csv(header: list[str], rows: list[list[str]], gzipped: bool) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8", "surrogatepass")
    name = "x.csv.gz" if gzipped else "x.csv"
    check(landing.read_file(f"{KEY}/{name}", gzip.compress(data) if gzipped else data))


@GARBAGE
@given(
    frame=st.lists(
        st.fixed_dictionaries({f: st.one_of(st.none(), st.text(max_size=12), timestamps) for f in FIELDS}),
        max_size=10,
    ),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
)
def test_random_and_corrupted_parquet(frame: list[dict[str, Any]], flips: list[tuple[int, int]]) -> None:
    buffer = io.BytesIO()
    pq.write_table(
        pa.Table.from_pylist(frame) if frame else pa.table({"event_id": pa.array([], pa.string())}), buffer
    )
    data = bytearray(buffer.getvalue())
    for at, xor in flips:
        data[at % len(data)] ^= xor
    check(landing.read_file(f"{KEY}/x.parquet", bytes(data)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.dictionaries(
        names,
        st.one_of(
            st.binary(max_size=300),
            st.lists(json_records, max_size=6).map(lambda rs: "\n".join(map(json.dumps, rs)).encode()),
        ),
        max_size=4,
    )
)
def test_a_partition_of_garbage_through_the_source_and_storage(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, KEY)
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        records = landing.LandingFileSource(Path(tmp).as_uri()).records(INTERVAL)
        checked = check(records)
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(Path(tmp, "rejected.parquet").as_uri())
        ref = write_frame(checked.rejected, path, REJECTED)
        again = storage.read_frame(ref)
        assert again["raw"].tolist() == checked.rejected["raw"].tolist()
        assert again["message"].tolist() == checked.rejected["message"].tolist()
