"""The partitioned warehouse (migration 0013): day partitions made on demand and ahead, the redelivery
rule bounded by the dedup window, queries by interval reading only their partitions, retention
dropping whole days of events, predictions, rejected records and labels together."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import pytest

from etlml.features import transform
from etlml.interval import Interval
from etlml.warehouse import writes
from etlml.warehouse.connection import query
from tests.integration.test_warehouse import processed

pytestmark = pytest.mark.db

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def interval_on(day: int, hour: int = 12) -> Interval:
    start = DAY + timedelta(days=day, hours=hour)
    return Interval(start, start + timedelta(minutes=10))


def partitions(conn: psycopg.Connection[Any], parent: str) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass ORDER BY 1",
        (parent,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def load(
    conn: psycopg.Connection[Any], interval: Interval, batch: int = 30, **kw: Any
) -> writes.ProcessedMerge:
    frame = processed(batch, interval)
    merged = writes.upsert_processed(conn, frame, interval, "baseline_v1", **kw)
    scored = frame[["event_id", "ts_utc"]].assign(y_hat=1.0)
    writes.upsert_predictions(conn, scored, "baseline_v1", "t/r", interval=interval, copy_first=True)
    return merged


@pytest.fixture
def clean(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """No day partitions left from other tests: each test here sees only the days it makes."""
    conn.execute("SELECT * FROM etlml_drop_partitions_before('infinity')")
    conn.execute("TRUNCATE labels")
    conn.commit()
    return conn


def test_a_load_makes_its_day_partitions_and_its_rows_land_only_there(clean: psycopg.Connection[Any]) -> None:
    load(clean, interval_on(0))
    load(clean, interval_on(1, hour=23))
    for parent in ("processed_data", "predictions", "rejected_events"):
        assert partitions(clean, parent) == [f"{parent}_p20261120", f"{parent}_p20261121"]
    held = clean.execute(
        "SELECT tableoid::regclass::text, min(interval_start), count(*) FROM processed_data "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert held == [
        ("processed_data_p20261120", interval_on(0).start, 30),
        ("processed_data_p20261121", interval_on(1, hour=23).start, 30),
    ]
    # made ahead by housekeeping: idempotent, and only what is missing
    made = writes.ensure_partitions(clean, DAY, DAY + timedelta(days=2))
    assert made == ["processed_data_p20261122", "predictions_p20261122", "rejected_events_p20261122"]
    assert writes.ensure_partitions(clean, DAY, DAY + timedelta(days=2)) == []


def plan_of(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any]) -> set[str]:
    """The partitions the plan of ``statement`` reads."""
    rows = conn.execute(f"EXPLAIN {statement}", params).fetchall()
    return set(
        re.findall(
            r"\b((?:processed_data|predictions|rejected_events)_p\d{8})\b", "\n".join(r[0] for r in rows)
        )
    )


def test_queries_by_interval_read_only_the_partitions_they_need(clean: psycopg.Connection[Any]) -> None:
    for day in range(4):
        load(clean, interval_on(day))
    target = interval_on(2)
    by_interval = {"s": target.start, "e": target.end}
    # the documented queries of one interval: its events with their predictions, and its quarantine
    assert plan_of(
        clean,
        "SELECT d.event_id, p.y_hat FROM processed_data d "
        "JOIN predictions p USING (interval_start, event_id) "
        "WHERE d.interval_start = %(s)s AND d.interval_end = %(e)s",
        by_interval,
    ) == {"processed_data_p20261122", "predictions_p20261122"}
    assert plan_of(
        clean,
        "SELECT reason, count(*) FROM rejected_events WHERE interval_start = %(s)s GROUP BY reason",
        by_interval,
    ) == {"rejected_events_p20261122"}
    # what a load reads and writes of its interval
    for name in ("count_interval_rows", "interval_has_rows"):
        assert plan_of(clean, query(name), {"interval_start": target.start, "interval_end": target.end}) == {
            "processed_data_p20261122"
        }
    # 20_rescore's window (and fitting statistics on one): that day, and the day before, whose last
    # interval could reach into it
    window = {"from": target.start, "to": target.start + timedelta(hours=1)}
    assert plan_of(clean, query("rescore_window"), window) == {
        "processed_data_p20261121",
        "processed_data_p20261122",
    }
    assert plan_of(clean, query("fit_feature_stats"), window) == {
        "processed_data_p20261121",
        "processed_data_p20261122",
    }


def test_a_redelivered_id_is_found_within_the_dedup_window_either_side(
    clean: psycopg.Connection[Any],
) -> None:
    first, later, far = interval_on(0), interval_on(2), interval_on(10)
    load(clean, first)
    again = processed(30, first).iloc[:5].assign(ts_utc=lambda f: f["ts_utc"] + (later.start - first.start))
    merged = writes.upsert_processed(clean, again, later, "baseline_v1", window=timedelta(days=7))
    assert sorted(merged.redelivered["event_id"]) == sorted(again["event_id"])
    assert set(merged.redelivered["held_start"]) == {first.start}
    assert clean.execute(
        "SELECT count(*) FROM processed_data WHERE interval_start = %s", (later.start,)
    ).fetchone() == (0,)
    # an interval that runs before an earlier one: the earlier one finds the id too (window after it)
    held_later = processed(30, far).iloc[:3]
    writes.upsert_processed(clean, held_later, far, "baseline_v1")
    back = held_later.assign(ts_utc=lambda f: f["ts_utc"] - (far.start - interval_on(8).start))
    merged = writes.upsert_processed(clean, back, interval_on(8), "baseline_v1", window=timedelta(days=7))
    assert len(merged.redelivered) == 3


def test_an_id_held_only_beyond_the_window_is_stored_again(clean: psycopg.Connection[Any]) -> None:
    first, much_later = interval_on(0), interval_on(9)
    load(clean, first)
    again = (
        processed(30, first).iloc[:5].assign(ts_utc=lambda f: f["ts_utc"] + (much_later.start - first.start))
    )
    merged = writes.upsert_processed(clean, again, much_later, "baseline_v1", window=timedelta(days=7))
    assert len(merged.redelivered) == 0
    held = clean.execute(
        "SELECT count(DISTINCT interval_start) FROM processed_data WHERE event_id = ANY(%s)",
        (list(again["event_id"]),),
    ).fetchone()
    assert held == (2,)


def test_retention_drops_whole_days_and_leaves_the_others_byte_identical(
    clean: psycopg.Connection[Any],
) -> None:
    for day in range(3):
        merged = load(clean, interval_on(day))
        assert merged.result.inserted == 30
        writes.upsert_rejected(
            clean,
            processed(1, interval_on(day))[["event_id"]].assign(
                source_file="f.csv", row_number=2, reason="bad_value", message="m", raw=b"x"
            ),
            interval_on(day),
            "t/r",
        )
    clean.execute(
        "INSERT INTO labels (event_id, y_true, observed_at, interval_start, interval_end, source_file, "
        "written_by_run) SELECT event_id, 1.0, interval_end, interval_start, interval_end, 'simulator', "
        "'t/r' FROM processed_data"
    )
    clean.commit()
    kept_days = "interval_start >= '2026-11-21'"
    digests = {
        t: clean.execute(
            f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} AS t WHERE {kept_days}"
        ).fetchone()
        for t in ("processed_data", "predictions", "rejected_events", "labels")
    }
    clean.execute("ANALYZE processed_data, predictions, rejected_events")
    clean.commit()
    dropped = writes.drop_partitions_before(clean, DAY + timedelta(days=1, hours=5))
    assert dropped == [writes.DroppedDay("2026-11-20", 30, 30, 1)]
    for parent in ("processed_data", "predictions", "rejected_events"):
        assert partitions(clean, parent) == [f"{parent}_p20261121", f"{parent}_p20261122"]
    assert clean.execute("SELECT count(*) FROM labels WHERE interval_start < '2026-11-21'").fetchone() == (0,)
    for table, digest in digests.items():
        assert (
            clean.execute(
                f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} AS t"
            ).fetchone()
            == digest
        ), table
    # the day that is not over yet stays, whatever the cutoff within it
    assert writes.drop_partitions_before(clean, DAY + timedelta(days=2, hours=23)) == [
        writes.DroppedDay("2026-11-21", 30, 30, 1)
    ]


def scans_by_partition(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Index and sequential scans of each of processed_data's partitions this backend has counted and
    not yet reported (so a test compares two readings in one transaction)."""
    rows = conn.execute(
        "SELECT relname, coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables "
        "WHERE relname LIKE 'processed_data_p%'"
    ).fetchall()
    return {str(name): int(n) for name, n in rows}


@pytest.mark.parametrize("held_hours", [3, 12], ids=["merged one by one", "one hash join"])
def test_the_redelivery_check_finds_an_id_of_any_interval_in_the_window_and_reads_only_its_days(
    clean: psycopg.Connection[Any], held_hours: int
) -> None:
    # the window of an interval on day 5 (one day either side) holds `held_hours` intervals of day 4;
    # up to 8 the check merges the loaded ids with each one's, above that it hashes the whole window
    for day in (1, 3):  # outside the window: never read
        load(clean, interval_on(day), batch=5)
    held = [interval_on(4, hour=h) for h in range(24 - held_hours, 24)]
    for interval in held:
        load(clean, interval, batch=5)
    target = interval_on(5, hour=6)
    writes.ensure_partitions(clean, target.start, target.start)
    clean.commit()
    window = writes.dedup_window(target, timedelta(days=1))

    def check(frame: Any) -> bool:
        """Load ``frame`` into the target interval as a first load does, ask the check, undo."""
        constants = {
            "normalized_with": "baseline_v1",
            "interval_start": target.start,
            "interval_end": target.end,
        }
        try:
            with clean.cursor() as cur:
                writes.copy_frames(cur, "processed_data", writes.PROCESSED_DIRECT, [frame], constants)
            before = scans_by_partition(clean)
            row = clean.execute(
                query("loaded_redelivered"), {"interval_start": target.start, **window}
            ).fetchone()
            after = scans_by_partition(clean)
            read = {name for name, n in after.items() if n > before.get(name, 0)}
        finally:
            clean.rollback()
        assert read <= {"processed_data_p20261124", "processed_data_p20261125", "processed_data_p20261126"}
        assert "processed_data_p20261124" in read  # where the held intervals are
        assert row is not None
        return bool(row[0])

    fresh = processed(20, target)
    assert not check(fresh)
    # one id of the earliest held interval, delivered again in the target interval
    again = processed(5, held[0]).iloc[:1].assign(ts_utc=fresh["ts_utc"].iloc[0])
    assert check(pd.concat([fresh, again], ignore_index=True))


def test_two_loads_of_different_intervals_at_once_store_a_shared_id_once(
    clean: psycopg.Connection[Any],
) -> None:
    # No key spans two intervals, so two loads at once (a backfill beside the scheduled run) must not both
    # pass the redelivery check before either commits: the second checks once the first has committed.
    first, second = interval_on(2, hour=10), interval_on(2, hour=11)
    writes.ensure_partitions(clean, first.start, first.start)
    clean.commit()
    ours = processed(5, first)
    theirs = pd.concat(
        [processed(5, second).iloc[:4], ours.iloc[:1].assign(ts_utc=second.start + timedelta(seconds=1))],
        ignore_index=True,
    )
    clean.execute("SELECT 1")  # a transaction is open: the load below stays in it, as in load_processed
    writes.upsert_processed(clean, ours, first, "baseline_v1")  # loaded and checked, not committed yet
    with ThreadPoolExecutor(1) as pool, psycopg.connect(clean.info.dsn) as other:
        loading = pool.submit(writes.upsert_processed, other, theirs, second, "baseline_v1")
        time.sleep(1.5)  # a load of five rows takes milliseconds: unless it waits, it is done by now
        waited = not loading.done()
        clean.commit()
        merged = loading.result(timeout=30)
    assert waited, "the second load checked before the first committed"
    assert list(merged.redelivered["event_id"]) == [ours["event_id"].iloc[0]]
    held = clean.execute(
        "SELECT interval_start FROM processed_data WHERE event_id = %s", (ours["event_id"].iloc[0],)
    ).fetchall()
    assert held == [(first.start,)]


def test_key_order_is_the_order_of_the_key(clean: psycopg.Connection[Any]) -> None:
    ids = ["b", "B", "a10", "a9", "é", "z", "Z0", "ä", "日本", "a", "-1", "_x"]
    ordered = transform.key_order(pd.DataFrame({"event_id": pd.Series(ids, dtype="string")}))
    rows = clean.execute('SELECT i FROM unnest(%s::text[]) AS i ORDER BY i COLLATE "C"', (ids,)).fetchall()
    assert list(ordered["event_id"]) == [r[0] for r in rows]
    collation = clean.execute(
        "SELECT collation_name FROM information_schema.columns "
        "WHERE table_name = 'processed_data' AND column_name = 'event_id'"
    ).fetchone()
    assert collation == ("C",)


def test_rescore_reads_its_events_by_key_in_the_windows_days_only(clean: psycopg.Connection[Any]) -> None:
    # 20_rescore lists the window's (event_id, interval_start) and reads each chunk's events again. With
    # no index by event id alone, a lookup by id alone scanned the window's days once per id.
    for day in range(4):
        load(clean, interval_on(day))
    target = interval_on(2)
    keys = clean.execute(
        "SELECT event_id, interval_start FROM processed_data WHERE interval_start = %s", (target.start,)
    ).fetchall()
    window = {"from": target.start, "to": target.start + timedelta(hours=1)}
    params = {"ids": [k[0] for k in keys], "starts": [k[1] for k in keys], **window}
    assert plan_of(clean, query("rescore_events"), params) == {
        "processed_data_p20261121",
        "processed_data_p20261122",
    }
    plan = "\n".join(r[0] for r in clean.execute(f"EXPLAIN {query('rescore_events')}", params).fetchall())
    # an id tested against the chunk's array is one index scan of the window's days per id in a large table
    assert "ANY" not in plan, plan
    events = writes.events_by_key(clean, [(k[0], k[1]) for k in keys], window)
    assert sorted(events["event_id"]) == sorted(params["ids"])
    assert set(events["interval_start"]) == {target.start}


def _waiting_lock(conn: psycopg.Connection[Any], pid: int) -> str | None:
    """The kind of lock the backend ``pid`` waits for, once it waits (``None`` after 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = conn.execute("SELECT locktype FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)).fetchone()
        if row is not None:
            return str(row[0])
        time.sleep(0.05)
    return None


def test_a_caller_creating_a_new_day_waits_for_one_creating_it(clean: psycopg.Connection[Any]) -> None:
    """Two loads of a new day's first intervals at once: the second caller that finds the day's
    partitions missing waits on the function's advisory lock until the first commits, then finds
    them and creates nothing. (Both used to create them; the second failed now and then with ``type
    processed_data_p... already exists`` when the first committed in the middle of its CREATE
    TABLE, as a CI run of tests/integration/test_concurrency.py did.)"""
    start = DAY + timedelta(days=1000)
    names = sorted(f"{p}_p{start:%Y%m%d}" for p in ("predictions", "processed_data", "rejected_events"))
    with psycopg.connect(clean.info.dsn) as first, ThreadPoolExecutor(1) as pool:
        first.execute("SELECT 1")  # a transaction open: the partitions it creates stay uncommitted
        assert sorted(writes.ensure_partitions(first, start, start)) == names
        with psycopg.connect(clean.info.dsn, autocommit=True) as second:
            made = pool.submit(writes.ensure_partitions, second, start, start)
            try:
                waiting = _waiting_lock(clean, second.info.backend_pid)
            finally:
                first.commit()  # whatever the second waits on, it can go on
            assert waiting == "advisory"
            assert made.result(timeout=30) == []
    assert partitions(clean, "processed_data") == [f"processed_data_p{start:%Y%m%d}"]
