"""The Redis stream source against the real local Redis: ranges, pages, closure, trimming, producer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from etlml.ingest import contract
from etlml.ingest.simulator import SimulatedSource
from etlml.ingest.stream import (
    RedisStreamSource,
    StreamTrimmedError,
    WindowOpenError,
    produce,
    trim,
)
from etlml.ingest.stream_entries import entry_id, row_number
from etlml.interval import Interval
from etlml.records import RECORD
from tests.streams import add, client, event, stream_key

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
INTERVAL = Interval(START, START + timedelta(minutes=10))
GRACE = timedelta(seconds=30)


@pytest.fixture
def r() -> Any:
    return client()


@pytest.fixture
def key() -> Iterator[str]:
    with stream_key("source") as k:
        yield k


def source(r: Any, key: str, **kw: Any) -> RedisStreamSource:
    return RedisStreamSource(r, key, GRACE, **kw)


def fill(r: Any, key: str, n: int) -> list[str]:
    """An entry just before the interval, ``n`` inside it (two per millisecond), one at its end."""
    add(r, key, START - timedelta(milliseconds=1), event("before", START))
    ids = [
        add(
            r,
            key,
            START + timedelta(milliseconds=i // 2),
            event(f"e{i:04d}", START + timedelta(seconds=i)),
            i % 2,
        )
        for i in range(n)
    ]
    add(r, key, INTERVAL.end, event("after", INTERVAL.end))
    return ids


def test_an_interval_is_its_range_of_entry_ids_read_in_pages(r: Any, key: str) -> None:
    ids = fill(r, key, 55)
    src = source(r, key, page_entries=7, chunk_rows=20)
    chunks = list(src.record_chunks(INTERVAL))
    assert [len(c) for c in chunks] == [21, 21, 13]  # whole pages, one chunk once 20 rows are in
    records = pd.concat(chunks, ignore_index=True)
    assert list(records.columns) == list(RECORD.names)
    assert records["event_id"].tolist() == [f"e{i:04d}" for i in range(55)]
    assert [entry_id(n) for n in records["row_number"]] == ids
    assert set(records["source_file"]) == {key}
    assert src.first_entry_id(INTERVAL) == ids[0]
    # every entry is an event of the contract; a rerun reads the same records
    checked = contract.apply(records, contract.Rules(INTERVAL, datetime.now(UTC), timedelta(minutes=5)))
    assert checked.counts.accepted == 55 and checked.counts.rejected == 0
    pd.testing.assert_frame_equal(src.records(INTERVAL), records)


def test_entries_added_while_the_interval_is_read_are_not_read(r: Any, key: str) -> None:
    fill(r, key, 55)
    src = source(r, key, page_entries=7, chunk_rows=7)
    before = src.records(INTERVAL)
    chunks = src.record_chunks(INTERVAL)
    read = [next(chunks)]
    # one with an explicit id, then arrivals by the server's clock: all after the stream's last id
    add(r, key, INTERVAL.end + timedelta(minutes=1), event("later", INTERVAL.end))
    for n in range(20):
        r.xadd(key, event(f"late{n}", INTERVAL.end))
    read.extend(chunks)
    pd.testing.assert_frame_equal(pd.concat(read, ignore_index=True), before)
    assert len(before) == 55 and "late0" not in set(before["event_id"])


def test_a_connection_cut_while_the_interval_is_read_is_made_again(
    r: Any, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    from tests.streams import REDIS_URL

    fill(r, key, 55)
    name = f"etlml-test-cut-{uuid.uuid4().hex[:8]}"
    reader = redis.Redis.from_url(REDIS_URL, client_name=name)
    src = source(reader, key, page_entries=7, chunk_rows=7)
    chunks = src.record_chunks(INTERVAL)
    read = [next(chunks)]
    cut = [c["id"] for c in r.client_list() if c.get("name") == name]
    assert cut and all(r.client_kill_filter(_id=i) for i in cut)
    read.extend(chunks)
    pd.testing.assert_frame_equal(pd.concat(read, ignore_index=True), source(r, key).records(INTERVAL))
    assert "asking again on a new connection" in caplog.text


@pytest.mark.parametrize("entries", [56, 7, 1])
def test_a_last_page_ending_exactly_at_the_interval_end_reads_every_entry_once(
    r: Any, key: str, entries: int
) -> None:
    ids = fill(r, key, entries)  # the entry just after the interval is on the next page's first id
    records = source(r, key, page_entries=7, chunk_rows=14).records(INTERVAL)
    assert [entry_id(n) for n in records["row_number"]] == ids


def test_an_interval_without_entries_reads_no_record(r: Any, key: str) -> None:
    add(r, key, START - timedelta(seconds=1), event("before", START))
    add(r, key, INTERVAL.end, event("after", INTERVAL.end))
    src = source(r, key, page_entries=1)
    assert list(src.record_chunks(INTERVAL)) == []
    pd.testing.assert_frame_equal(src.records(INTERVAL), RECORD.empty())
    assert src.first_entry_id(INTERVAL) is None


def test_entry_ids_number_the_records_both_ways() -> None:
    assert row_number("1764145200000-3") == 1_764_145_200_000_000_003
    assert entry_id(1_764_145_200_000_000_003) == "1764145200000-3"


def test_malformed_entries_are_quarantined_with_their_fields_and_id(r: Any, key: str) -> None:
    at = START + timedelta(minutes=1)
    good = add(r, key, at, event("ok", at))
    no_id = add(r, key, at, {"ts_utc": at.isoformat(), "f1": "1", "f2": "2", "f3": "3"}, 1)
    bad_number = add(r, key, at, event("n", at) | {"f1": "ten"}, 2)
    not_utf8 = add(r, key, at, event("u", at) | {"f2": b"\xff\xfe"}, 3)
    extra = add(r, key, at, event("x", at) | {"colour": "red"}, 4)
    far = add(r, key, at, event("far", at - timedelta(hours=2)), 5)
    records = source(r, key).records(INTERVAL)
    rules = contract.Rules(INTERVAL, datetime.now(UTC), timedelta(minutes=5), tolerance=GRACE)
    checked = contract.apply(records, rules)
    assert set(checked.valid["event_id"]) == {"ok", "x"}
    reasons = {
        entry_id(n): reason
        for n, reason in zip(checked.rejected["row_number"], checked.rejected["reason"], strict=True)
    }
    assert reasons == {
        no_id: "missing_event_id",
        bad_number: "invalid_number",
        not_utf8: "invalid_encoding",
        far: "outside_interval",
    }
    raw = dict(zip(checked.rejected["reason"], checked.rejected["raw"], strict=True))
    assert json.loads(raw["missing_event_id"])["entry_id"] == no_id
    assert b"\xff\xfe" in raw["invalid_encoding"]  # the stored bytes, not a replacement
    assert checked.counts.extra_fields == {"colour": 1}
    assert good not in reasons and extra not in reasons


def test_an_event_stamped_within_the_grace_of_its_arrival_interval_is_accepted(r: Any, key: str) -> None:
    add(r, key, START, event("late", START - timedelta(seconds=20)))
    add(r, key, START, event("later", START - timedelta(seconds=40)), 1)
    rules = contract.Rules(INTERVAL, datetime.now(UTC), timedelta(minutes=5), tolerance=GRACE)
    checked = contract.apply(source(r, key).records(INTERVAL), rules)
    assert checked.valid["event_id"].tolist() == ["late"]
    assert checked.rejected["reason"].tolist() == ["outside_interval"]


def test_a_window_not_yet_closed_is_not_read(r: Any, key: str) -> None:
    seconds, _ = r.time()
    now = datetime.fromtimestamp(int(seconds), UTC)
    # ended 10 s ago by the server's clock: still within the 30 s grace
    open_interval = Interval(now - timedelta(minutes=10, seconds=10), now - timedelta(seconds=10))
    add(r, key, open_interval.start, event("early", open_interval.start))
    src = source(r, key)
    window = src.window(open_interval)
    assert not window.closed and 15 < window.wait_seconds <= 20
    with pytest.raises(WindowOpenError, match="closes in"):
        src.check_readable(open_interval)
    with pytest.raises(WindowOpenError):
        next(iter(src.record_chunks(open_interval)))
    # with no grace it is closed, and read
    assert len(RedisStreamSource(r, key, timedelta(0)).records(open_interval)) == 1


def test_a_stream_whose_last_id_is_past_the_grace_closes_the_window(r: Any, key: str) -> None:
    future = Interval(datetime(2999, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, 0, 10, tzinfo=UTC))
    src = source(r, key)
    assert not src.window(future).closed
    add(r, key, future.end + GRACE, event("x", future.end))
    assert src.window(future).closed


def test_a_trimmed_interval_is_refused(r: Any, key: str) -> None:
    fill(r, key, 10)
    src = source(r, key)
    later = Interval(INTERVAL.end, INTERVAL.end + timedelta(minutes=10))
    # "before" and e0000..e0002; e0003, the newest entry before the point, is kept
    assert trim(r, key, START + timedelta(milliseconds=2)) == 4
    with pytest.raises(StreamTrimmedError, match=r"trimmed.*rows stored for it stay"):
        src.check_readable(INTERVAL)
    with pytest.raises(StreamTrimmedError):
        list(src.record_chunks(INTERVAL))
    assert len(src.records(later)) == 1  # an interval after the trim point is whole


def test_a_deleted_entry_makes_its_interval_and_earlier_ones_incomplete(r: Any, key: str) -> None:
    ids = fill(r, key, 4)
    r.xdel(key, ids[2])
    with pytest.raises(StreamTrimmedError, match="deleted"):
        source(r, key).records(INTERVAL)


def test_a_trim_while_reading_is_noticed(r: Any, key: str) -> None:
    fill(r, key, 30)
    chunks = source(r, key, page_entries=10, chunk_rows=10).record_chunks(INTERVAL)
    first = next(chunks)
    assert len(first) == 10
    trim(r, key, START + timedelta(milliseconds=1))
    with pytest.raises(StreamTrimmedError):
        list(chunks)


def test_the_producer_writes_events_the_interval_of_their_arrival_reads(r: Any, key: str) -> None:
    events = SimulatedSource(7, 300).events(INTERVAL)
    first, last = produce(r, key, events, batch=128)
    assert first is not None and last is not None
    arrival = Interval(
        datetime.fromtimestamp(int(first.split("-")[0]) / 1000, UTC),
        datetime.fromtimestamp((int(last.split("-")[0]) + 1) / 1000, UTC),
    )
    time.sleep(0.01)  # the server's clock passes the last arrival: the interval is closed
    src = RedisStreamSource(r, key, timedelta(0))
    records = src.records(arrival)
    assert records["event_id"].tolist() == events["event_id"].tolist()
    missing_f2 = int(events["f2"].isna().sum())
    assert 0 < missing_f2 == int(records["f2"].isna().sum())  # a missing feature is left out
    rules = contract.Rules(arrival, datetime.now(UTC), timedelta(minutes=5), tolerance=timedelta(seconds=1))
    checked = contract.apply(records, rules)
    assert checked.counts.accepted == 300
    assert checked.counts.imputed == {"f2": missing_f2}
    assert (checked.valid["f1"].to_numpy() == events["f1"].to_numpy()).all()


def test_the_producer_keeps_to_its_rate(r: Any, key: str) -> None:
    slept: list[float] = []
    ticks = iter(range(1000))
    events = SimulatedSource(7, 50).events(INTERVAL)
    produce(r, key, events, per_second=100, clock=lambda: float(next(ticks)) * 0.01, sleep=slept.append)
    # 10 events a batch at 100/s: each batch is due 0.1 s after the previous one
    assert len(slept) == 5 and all(s > 0 for s in slept)
    assert r.xlen(key) == 50


def test_milliseconds_are_exact_for_any_aware_datetime() -> None:
    import pendulum

    from etlml.ingest.stream import to_ms

    moment = datetime(2026, 11, 20, 12, 0, 0, 999_999, tzinfo=UTC)
    assert to_ms(moment) == 1_795_176_000_999  # 2026-11-20T12:00:00Z is 1795176000 s
    assert to_ms(pendulum.instance(moment)) == to_ms(moment.astimezone(timezone(timedelta(hours=2))))


def test_backfill_spreads_events_over_a_past_interval(r: Any, key: str) -> None:
    import redis

    from etlml.ingest.stream import backfill

    events = SimulatedSource(3, 1_500).events(INTERVAL)
    assert backfill(r, key, events, INTERVAL, batch=400) == 1_500
    records = source(r, key).records(INTERVAL)
    assert records["event_id"].tolist() == events["event_id"].tolist()
    assert pd.to_datetime(records["ts_utc"]).tolist() == events["ts_utc"].tolist()
    arrivals = [entry_id(n) for n in records["row_number"]]
    assert arrivals[-1] < f"{int(arrivals[0].split('-')[0]) + 600_000}-0"  # all inside the ten minutes
    earlier = Interval(START - timedelta(minutes=10), START)
    with pytest.raises(redis.ResponseError, match="equal or smaller"):
        backfill(r, key, events.head(1), earlier)
