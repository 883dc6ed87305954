"""extract on a source that streams: chunks checked one by one, events split into shards by id,
duplicates that met only across chunks resolved in their shard."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest

from etlml import storage
from etlml.ingest import contract, landing
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.steps.extract import extract
from etlml.steps.run import Extracted, RunContext
from tests.landing_files import mixed_partition

pytestmark = pytest.mark.db

INTERVAL = Interval(datetime(2026, 11, 25, 18, 10, tzinfo=UTC), datetime(2026, 11, 25, 18, 20, tzinfo=UTC))
RUN = RunContext("shards_test", "manual__1", INTERVAL)
FIVE_MINUTES = timedelta(minutes=5)


class OneFrameSource:
    """Records from a source that cannot stream: one frame."""

    name = "whole"

    def __init__(self, chunks: list[pd.DataFrame]) -> None:
        self.chunks = chunks

    def records(self, interval: Interval) -> pd.DataFrame:
        return pd.concat(self.chunks, ignore_index=True)


class ChunkedSource(OneFrameSource):
    """The same records in fixed chunks, as a streaming source delivers them."""

    name = "chunked"

    def record_count(self, interval: Interval) -> int:
        return sum(len(c) for c in self.chunks)

    def record_chunks(self, interval: Interval) -> Iterator[pd.DataFrame]:
        return iter(self.chunks)


def chunks() -> list[pd.DataFrame]:
    records = SimulatedSource(4, 12).records(INTERVAL).assign(source_file="a.jsonl")
    first, second = records.iloc[:8].copy(), records.iloc[8:].copy()
    # records 2, 5 and 7 delivered again later in the same file, with another f1: those win
    again = records.iloc[[2, 5, 7]].assign(row_number=[13, 14, 15], f1=[-1.0, -2.0, -3.0])
    return [first, pd.concat([second, again], ignore_index=True)]


def events_of(extracted: Extracted) -> pd.DataFrame:
    frames = [storage.read_frame(s.events) for s in extracted.shards]
    return pd.concat(frames, ignore_index=True).sort_values("event_id", ignore_index=True)


def test_duplicates_across_chunks_are_resolved_in_their_shard(conn: psycopg.Connection[Any]) -> None:
    extracted = extract(RUN, source=ChunkedSource(chunks()), shard_size=5)
    assert len(extracted.shards) == 3  # 15 records, 5 per shard
    counts = extracted.plan.counts
    assert (counts.extracted, counts.accepted, counts.deduplicated) == (15, 12, 3)
    events = events_of(extracted)
    assert events["event_id"].is_unique and len(events) == 12
    for shard in extracted.shards:
        ids = storage.read_frame(shard.events)["event_id"]
        assert shard.events.rows == len(ids)
    winners = events.set_index("row_number").loc[[13, 14, 15], "f1"].tolist()
    assert winners == [-1.0, -2.0, -3.0]
    rejected = storage.read_frame(extracted.plan.rejected)
    assert sorted(rejected["row_number"]) == [3, 6, 8]
    assert set(rejected["reason"]) == {"duplicate"}
    assert all("is kept from 'a.jsonl' row 1" in m for m in rejected["message"])


def test_streamed_and_whole_extracts_agree(conn: psycopg.Connection[Any]) -> None:
    streamed = extract(RUN, source=ChunkedSource(chunks()), shard_size=4)
    streamed_events = events_of(streamed)
    streamed_rejected = storage.read_frame(streamed.plan.rejected)
    whole = extract(RUN, source=OneFrameSource(chunks()), shard_size=100)
    assert len(whole.shards) == 1
    pd.testing.assert_frame_equal(events_of(whole), streamed_events)
    whole_rejected = storage.read_frame(whole.plan.rejected)
    key = ["row_number", "reason", "message", "event_id"]
    pd.testing.assert_frame_equal(
        whole_rejected[key].sort_values("row_number", ignore_index=True),
        streamed_rejected[key].sort_values("row_number", ignore_index=True),
    )
    assert whole.plan.counts == streamed.plan.counts


def test_duplicates_resolved_in_their_shard_keep_their_raw_bytes(conn: psycopg.Connection[Any]) -> None:
    raw = [[f"line {n} of a.jsonl".encode() for n in c["row_number"]] for c in chunks()]
    with_raw = [c.assign(raw=r) for c, r in zip(chunks(), raw, strict=True)]
    extracted = extract(RUN, source=ChunkedSource(with_raw), shard_size=5)
    rejected = storage.read_frame(extracted.plan.rejected).sort_values("row_number")
    assert rejected["raw"].tolist() == [b"line 3 of a.jsonl", b"line 6 of a.jsonl", b"line 8 of a.jsonl"]
    whole = extract(RUN, source=OneFrameSource(with_raw), shard_size=100)
    assert storage.read_frame(whole.plan.rejected)["raw"].tolist() == rejected["raw"].tolist()


def test_a_landing_partition_streams_through_extract_as_if_read_whole(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    expected = mixed_partition(tmp_path, INTERVAL.start, landing.partition_key(INTERVAL))
    source = landing.LandingFileSource(tmp_path.as_uri(), chunk_records=40)
    streamed = extract(RUN, source=source, shard_size=100)
    assert len(streamed.shards) == 3
    counts = streamed.plan.counts
    assert (counts.extracted, counts.accepted) == (expected.extracted, len(expected.loaded))
    assert (counts.rejected, counts.deduplicated) == (expected.rejected_not_duplicate, expected.deduplicated)
    assert set(events_of(streamed)["event_id"]) == expected.loaded
    checked = contract.apply(
        source.records(INTERVAL), contract.Rules(INTERVAL, datetime.now(UTC), FIVE_MINUTES)
    )
    key = ["source_file", "row_number"]
    pd.testing.assert_frame_equal(
        storage.read_frame(streamed.plan.rejected).sort_values(key, ignore_index=True),
        checked.rejected.sort_values(key, ignore_index=True),
    )  # raw bytes, messages and reasons, duplicates included, as the contract gives them at once


class ReadOnceSource(OneFrameSource):
    """The same records in chunks, without a count before they are read (a log read once)."""

    name = "read_once"

    def record_chunks(self, interval: Interval) -> Iterator[pd.DataFrame]:
        return iter(self.chunks)


@pytest.mark.parametrize("shard_size", [5, 100])
def test_a_source_counted_as_it_is_read_is_sharded_as_a_counted_one(
    conn: psycopg.Connection[Any], shard_size: int
) -> None:
    counted = extract(RUN, source=ChunkedSource(chunks()), shard_size=shard_size)
    expected = [storage.read_frame(s.events) for s in counted.shards]
    run = RunContext("shards_test", f"manual__read_once_{shard_size}", INTERVAL)
    once = extract(run, source=ReadOnceSource(chunks()), shard_size=shard_size)
    assert [s.key for s in once.shards] == [s.key for s in counted.shards]
    for shard, events in zip(once.shards, expected, strict=True):
        pd.testing.assert_frame_equal(storage.read_frame(shard.events), events)
    assert once.plan.counts == counted.plan.counts
    # the events went to one file first; split into shards, it is gone
    folder = storage.at(once.shards[0].events.path).parent
    assert (folder / "events-001-of-001.parquet").exists() == (len(once.shards) == 1)


@pytest.mark.parametrize(("entries", "shards"), [(30, 3), (0, 1)])
def test_a_stream_interval_is_read_once_and_sharded_by_what_it_held(
    conn: psycopg.Connection[Any], entries: int, shards: int
) -> None:
    from etlml.ingest.ledger import Ledger
    from etlml.ingest.stream import RedisStreamSource
    from tests.streams import add, client, event, stream_key

    r = client()
    with stream_key("extract") as key:
        add(r, key, INTERVAL.start - timedelta(seconds=1), event("before", INTERVAL.start))
        ids = [
            add(
                r,
                key,
                INTERVAL.start + timedelta(seconds=i),
                event(f"s{i}", INTERVAL.start + timedelta(seconds=i)),
            )
            for i in range(entries)
        ]
        add(r, key, INTERVAL.end, event("after", INTERVAL.end))
        source = RedisStreamSource(r, key, timedelta(seconds=30), page_entries=4, chunk_rows=8)
        run = RunContext("shards_test", f"manual__stream_{entries}", INTERVAL)
        extracted = extract(run, source=source, shard_size=10)
    assert len(extracted.shards) == shards
    assert sorted(events_of(extracted)["event_id"]) == sorted(f"s{i}" for i in range(entries))
    stream = Ledger.from_json(extracted.plan.ledger or {}).stream
    assert stream is not None and stream.key == key and stream.entries == entries
    assert (stream.first_entry_id, stream.last_entry_id) == ((ids[0], ids[-1]) if ids else (None, None))
    assert extracted.plan.first_entry_id == stream.first_entry_id
