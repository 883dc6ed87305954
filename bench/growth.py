"""`bench.py --growth N`: does loading an interval slow down as the warehouse grows?

In one throwaway warehouse: the writes of one ``--events`` interval (``load_processed``'s upsert into
``processed_data``, with its redelivery check, and ``store_predictions``' COPY into ``predictions``) into
an empty warehouse; then the warehouse is filled to ``N`` events with their predictions, one interval
of ``--events`` per day over the days before (a history, as retention would keep it). Then three timed
pairs, each back to back: the first interval written again into a fresh, empty warehouse (``empty``),
and one more interval of the same day as the first written into the filled one and rolled back
(``stored``; its redelivery check reads the first interval's ids). The ratio is the median pair's
``empty / stored`` seconds. Event ids are random hex (as UUIDs are), the hardest case for a B-tree:
time-ordered ids would only append at its right edge.

What the ratio depends on, and what the run does about it:

* the machine's load: each pair's two writes run back to back, so they share it, and the median of
  three pairs drops one pair that another job disturbed; the load average before each write is
  recorded (``loadavg``);
* checkpoints: the fill writes gigabytes of WAL, so a checkpoint (spread over 90 % of
  ``checkpoint_timeout``) would otherwise be writing while the stored interval is timed, and every
  page first touched after a checkpoint is written whole to the WAL. Each timed write starts right
  after a ``CHECKPOINT``; the checkpoints that still ran during it (on a shared server, other
  databases' WAL starts them too) are counted (``checkpoints``);
* statistics and dead rows: ``VACUUM ANALYZE`` before each timed write (autovacuum may be off, as it
  is on the reference machine, or may start at any moment: neither decides the plan; the rolled-back
  writes leave dead rows that it removes);
* the server's settings (``shared_buffers``, ``work_mem``, ``max_wal_size``, ...), recorded as they
  are (``server``): a warehouse that outgrows ``shared_buffers`` reads its window's ids from the
  operating system's cache or the disk.

Each timed write is split into ``processed_s`` (of which the redelivery check, timed again alone,
``check_s``) and ``predictions_s``. The first empty write (before the fill, in the filled warehouse)
is kept as ``empty_first_events_per_s``: how this run measured before.

Prints ``GROWTH stored_events=<int> empty_events_per_s=<int> stored_events_per_s=<int> ratio=<float>``,
then what dropping one day of ``--events`` events by retention took, and the disk used per million
events (tables and indexes of processed_data and predictions).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

FILL_EVENTS = """
INSERT INTO processed_data (event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed,
                            f3_imputed, normalized_with, interval_start, interval_end)
SELECT md5(%(tag)s || g), %(start)s + (g %% 600000) * interval '1 ms', 10 + random() * 4,
       random() - 0.5, 100 + random() * 20, random(), random(), random(), false, false, false,
       'baseline_v1', %(start)s, %(start)s + interval '10 min'
FROM generate_series(1, %(events)s) AS g
ORDER BY 1  -- in key order, so filling writes the indexes sequentially (a history is bulk loaded once)
"""
FILL_PREDICTIONS = """
INSERT INTO predictions ({interval}event_id, model_version, y_hat, ts_utc, written_by_run)
SELECT {interval}event_id, 'baseline_v1', 0.3 * f1_z + 0.2 * f2_z + 0.5 * f3_z, ts_utc, 'bench/fill'
FROM processed_data WHERE interval_start = %(start)s ORDER BY event_id
"""
# The layout before migration 0013, measured the same way when this file runs against that release:
# one table each, retention by DELETE.
DELETE_DAY = """
WITH gone AS (
    DELETE FROM processed_data WHERE interval_start >= %(from)s AND interval_start < %(to)s RETURNING event_id
)
DELETE FROM predictions p USING gone WHERE p.event_id = gone.event_id
"""


def _partitioned() -> bool:
    from etlml.warehouse import writes

    return hasattr(writes, "ensure_partitions")


def _frame(interval: Any, events: int) -> pd.DataFrame:
    """The interval's simulated events, their ids replaced by random-looking hex digests, cleaned and
    normalized with baseline_v1's statistics as the transform step does it: a row group at a time,
    each in event-id order."""
    from etlml.features import transform
    from etlml.features.stats import FeatureStats
    from etlml.ingest.simulator import SimulatedSource
    from etlml.storage import ROW_GROUP_ROWS

    stats = {"f1": FeatureStats(10, 2), "f2": FeatureStats(0, 1), "f3": FeatureStats(100, 10)}
    raw = SimulatedSource(7, events).events(interval)
    raw["event_id"] = [hashlib.md5(i.encode(), usedforsecurity=False).hexdigest() for i in raw["event_id"]]
    groups = (raw.iloc[i : i + ROW_GROUP_ROWS] for i in range(0, len(raw), ROW_GROUP_ROWS))
    frames = [transform.key_order(transform.normalize(transform.clean(g), stats)) for g in groups]
    return pd.concat(frames, ignore_index=True)


SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
    "checkpoint_timeout",
    "checkpoint_completion_target",
    "synchronous_commit",
    "full_page_writes",
    "wal_compression",
    "autovacuum",
    "jit",
)
CHECKPOINTS = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
PAIRS = 3  # timed pairs (empty, stored), back to back; the ratio is the median pair's


def server_settings(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
            [list(SERVER_SETTINGS)],
        ).fetchall()
    return {str(name): str(value) for name, value in rows}


def _settle(dsn: str) -> None:
    """What each timed write starts from: fresh statistics, no dead rows, no checkpoint pending."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE processed_data")
        conn.execute("VACUUM ANALYZE predictions")
        conn.execute("CHECKPOINT")


def _timed_write(dsn: str, interval: Any, frame: pd.DataFrame, *, keep: bool = True) -> dict[str, Any]:
    """:func:`_settle`, then :func:`_write`; its seconds, the load average before it and the
    checkpoints that ran during it."""
    _settle(dsn)
    load = os.getloadavg()[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute(CHECKPOINTS).fetchone()
    written = _write(dsn, interval, frame, keep=keep)
    with psycopg.connect(dsn, autocommit=True) as conn:
        after = conn.execute(CHECKPOINTS).fetchone()
    checkpoints = int(after[0]) - int(before[0]) if before and after else None
    return {**written, "loadavg": load, "checkpoints": checkpoints}


def _write(dsn: str, interval: Any, frame: pd.DataFrame, *, keep: bool = True) -> dict[str, float | None]:
    """Seconds for the interval's two writes, as the pipeline's steps do them (``seconds``), and each
    write's (``processed_s``, ``predictions_s``); then, untimed in ``seconds``, the redelivery check
    of the load run again alone (``check_s``: what of ``processed_s`` the window's ids cost). Unless
    ``keep``, the transaction both writes run in (each write's own a savepoint of it) is rolled back
    afterwards, so the same write can be timed again; the commit is not timed either way."""
    from etlml.warehouse import writes

    scored = frame[["event_id", "ts_utc"]].assign(
        y_hat=0.3 * frame["f1_z"] + 0.2 * frame["f2_z"] + 0.5 * frame["f3_z"]
    )
    extra = {"interval": interval} if _partitioned() else {}
    with psycopg.connect(dsn) as conn:
        if extra:
            writes.ensure_partitions(conn, interval.start, interval.start)  # housekeeping makes them ahead
        with conn.transaction(force_rollback=not keep):
            started = time.perf_counter()
            with conn.transaction():
                merged = writes.upsert_processed(conn, frame, interval, "baseline_v1")
            processed = time.perf_counter()
            with conn.transaction():
                writes.upsert_predictions(
                    conn, scored, "baseline_v1", "bench/growth", copy_first=True, **extra
                )
            done = time.perf_counter()
            check = _check_s(conn, interval) if extra else None
    if merged.result.inserted != len(frame):
        raise RuntimeError(f"expected {len(frame)} new events, the load inserted {merged.result}")
    return {
        "seconds": done - started,
        "processed_s": processed - started,
        "predictions_s": done - processed,
        "check_s": check,
    }


def _check_s(conn: psycopg.Connection[Any], interval: Any) -> float | None:
    from etlml.warehouse import writes

    params = {"interval_start": interval.start, **writes.dedup_window(interval, timedelta(days=1))}
    try:
        started = time.perf_counter()
        with conn.transaction():  # a savepoint: a release without the function rolls back to it
            conn.execute(
                "SELECT etlml_window_holds_loaded_ids(%(interval_start)s, %(window_start)s, %(window_end)s)",
                params,
            )
        return time.perf_counter() - started
    except psycopg.errors.UndefinedFunction:
        return None


def _fill(dsn: str, first: datetime, days: int, events: int) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        from etlml.warehouse import writes

        partitioned = _partitioned()
        if partitioned:
            writes.ensure_partitions(conn, first - timedelta(days=days), first)
        predictions = FILL_PREDICTIONS.format(interval="interval_start, " if partitioned else "")
        started = time.perf_counter()
        for day in range(1, days + 1):
            start = first - timedelta(days=day)
            params = {"tag": f"fill{day}-", "start": start, "events": events}
            conn.execute(FILL_EVENTS, params)
            conn.execute(predictions, params)
            print(f"  filled {start:%Y-%m-%d}: {day * events:,} events", flush=True)
        conn.execute("VACUUM ANALYZE processed_data")
        conn.execute("VACUUM ANALYZE predictions")
        return time.perf_counter() - started


def _line(events: int, timed: dict[str, Any]) -> str:
    check = "-" if timed["check_s"] is None else f"{timed['check_s']:.2f}"
    return (
        f"{timed['seconds']:>8.2f} s {events / timed['seconds']:>12,.0f} events/s (processed_data "
        f"{timed['processed_s']:.2f} s, of which the redelivery check about {check} s; predictions "
        f"{timed['predictions_s']:.2f} s; load average {timed['loadavg']:.1f} before; "
        f"{timed['checkpoints']} checkpoint(s) during)"
    )


def _disk_per_million(dsn: str) -> tuple[int, float]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM processed_data), "
            "(SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
            " WHERE i.inhparent IN ('processed_data'::regclass, 'predictions'::regclass))"
            " + pg_total_relation_size('processed_data') + pg_total_relation_size('predictions')"
        ).fetchone()
    assert row is not None
    return int(row[0]), float(row[1]) / int(row[0]) * 1e6 / 2**20


def growth_run(
    dsn: str,
    events: int,
    stored: int,
    first: datetime,
    empty_warehouse: Callable[[], AbstractContextManager[str]],
) -> dict[str, Any]:
    """The figures of one growth run (see the module's docstring); ``empty_warehouse()`` gives the DSN
    of a fresh, migrated warehouse for the timed empty write, dropped afterwards."""
    from etlml.interval import Interval
    from etlml.warehouse import writes

    empty_interval = Interval(first, first + timedelta(minutes=10))
    later = Interval(empty_interval.end, empty_interval.end + timedelta(minutes=10))
    frames = {i: _frame(i, events) for i in (empty_interval, later)}
    server = server_settings(dsn)
    print(f"\ngrowth: writes of one {events:,}-event interval, empty warehouse, then one holding {stored:,}")
    print("  server: " + ", ".join(f"{k}={v}" for k, v in server.items()))
    empty_first = _timed_write(dsn, empty_interval, frames[empty_interval])
    print(f"  empty warehouse, before the fill {_line(events, empty_first)}")
    days = max(0, -(-(stored - events) // events))
    fill_s = _fill(dsn, first.replace(hour=0, minute=0), days, events)
    held, mb_per_million = _disk_per_million(dsn)
    print(f"  filled to {held:,} events in {fill_s:.0f} s; {mb_per_million:,.0f} MiB per million events")
    pairs = []
    for i in range(PAIRS):
        with empty_warehouse() as fresh:
            empty = _timed_write(fresh, empty_interval, frames[empty_interval])
        print(f"  pair {i + 1}: empty warehouse         {_line(events, empty)}")
        filled = _timed_write(dsn, later, frames[later], keep=False)
        print(f"  pair {i + 1}: {held:,} stored {' ' * max(0, 10 - len(f'{held:,}'))}{_line(events, filled)}")
        pairs.append({"empty": empty, "stored": filled, "ratio": empty["seconds"] / filled["seconds"]})
    median = sorted(pairs, key=lambda pair: pair["ratio"])[len(pairs) // 2]
    empty_s, stored_s = median["empty"]["seconds"], median["stored"]["seconds"]
    oldest = first.replace(hour=0, minute=0) - timedelta(days=days)
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        if _partitioned():
            dropped_events = writes.drop_partitions_before(conn, oldest + timedelta(days=1))[0].processed_rows
        else:
            with conn.transaction():
                conn.execute(DELETE_DAY, {"from": oldest, "to": oldest + timedelta(days=1)})
            dropped_events = events
        drop_s = time.perf_counter() - started
    print(f"  retention: dropped the day {oldest:%Y-%m-%d} ({dropped_events:,} events) in {drop_s:.3f} s")
    figures = {
        "events": events,
        "stored_events": held,
        "empty_events_per_s": events / empty_s,
        "stored_events_per_s": events / stored_s,
        "ratio": empty_s / stored_s,
        "empty_first_events_per_s": events / empty_first["seconds"],
        "pair_ratios": [pair["ratio"] for pair in pairs],
        "timed": {"empty_first": empty_first, "pairs": pairs},
        "server": server,
        "fill_s": fill_s,
        "drop_day_s": drop_s,
        "dropped_day_events": dropped_events,
        "layout": "day partitions" if _partitioned() else "one table each",
        "disk_mib_per_million_events": mb_per_million,
        "id_kind": "random hex",
    }
    print(
        f"GROWTH stored_events={held} empty_events_per_s={figures['empty_events_per_s']:.0f} "
        f"stored_events_per_s={figures['stored_events_per_s']:.0f} ratio={figures['ratio']:.2f}"
    )
    return figures
