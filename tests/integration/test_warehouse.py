"""COPY + merge into the real warehouse tables."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from etlml.features import transform
from etlml.features.stats import FeatureStats
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.warehouse import writes

pytestmark = pytest.mark.db

INTERVAL = Interval(datetime(2026, 11, 25, 18, 10, tzinfo=UTC), datetime(2026, 11, 25, 18, 20, tzinfo=UTC))
STATS = {"f1": FeatureStats(10, 2), "f2": FeatureStats(0, 1), "f3": FeatureStats(100, 10)}


def processed(batch: int = 100, interval: Interval = INTERVAL) -> Any:
    return transform.normalize(transform.clean(SimulatedSource(11, batch).events(interval)), STATS)


def table_digest(conn: psycopg.Connection[Any], table: str, key: str) -> str:
    row = conn.execute(f"SELECT md5(string_agg(t::text, '|' ORDER BY {key})) FROM {table} AS t").fetchone()
    assert row is not None
    return str(row[0])


def test_load_inserts_every_row_with_nulls_for_missing_raw_values(conn: psycopg.Connection[Any]) -> None:
    frame = processed()
    result = writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1").result
    assert (result.staged, result.inserted, result.updated, result.removed) == (100, 100, 0, 0)
    count, nulls, imputed = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE f2 IS NULL), count(*) FILTER (WHERE f2_imputed) "
        "FROM processed_data WHERE interval_start = %s",
        (INTERVAL.start,),
    ).fetchone() or (0, 0, 0)
    assert count == 100
    assert nulls == imputed == int(frame["f2"].isna().sum())
    stored = conn.execute("SELECT f1, f3_z FROM processed_data ORDER BY event_id LIMIT 1").fetchone()
    assert stored == (frame["f1"].iloc[0], frame["f3_z"].iloc[0])


def test_reload_of_same_rows_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    frame = processed()
    writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1")
    before = table_digest(conn, "processed_data", "event_id")
    again = writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1").result
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 100)
    assert table_digest(conn, "processed_data", "event_id") == before


def test_a_changed_value_updates_only_that_row_and_deletes_its_predictions(
    conn: psycopg.Connection[Any],
) -> None:
    frame = processed()
    writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1")
    writes.upsert_predictions(
        conn, frame[["event_id", "ts_utc"]].assign(y_hat=1.0), "baseline_v1", "t/r", interval=INTERVAL
    )
    frame.loc[3, "f1"] = 99.0
    merged = writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1")
    assert (merged.result.inserted, merged.result.updated, merged.outdated_predictions) == (0, 1, 1)
    changed = conn.execute("SELECT count(*) FROM processed_data WHERE updated_at > created_at").fetchone()
    assert changed == (1,)
    # the prediction of the changed event went with its old features, in the same transaction
    scored = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE event_id = %s) FROM predictions", (frame["event_id"][3],)
    )
    assert scored.fetchone() == (99, 0)


def test_rows_the_interval_no_longer_has_are_removed_with_their_predictions(
    conn: psycopg.Connection[Any],
) -> None:
    later = Interval(INTERVAL.end, INTERVAL.end + timedelta(minutes=10))
    writes.upsert_processed(conn, processed(100, later), later, "baseline_v1")
    frame = processed(100)
    writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1")
    scored = frame[["event_id", "ts_utc"]].assign(y_hat=1.0)
    writes.upsert_predictions(conn, scored, "baseline_v1", "test/run", interval=INTERVAL)
    result = writes.upsert_processed(conn, frame.iloc[:60], INTERVAL, "baseline_v1").result
    assert result.removed == 40
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM processed_data WHERE interval_start = %(s)s),"
        " (SELECT count(*) FROM processed_data WHERE interval_start = %(later)s),"
        " (SELECT count(*) FROM predictions)",
        {"s": INTERVAL.start, "later": later.start},
    ).fetchone()
    assert counts == (60, 100, 60)


def test_predictions_of_another_version_are_never_touched(conn: psycopg.Connection[Any]) -> None:
    frame = processed(20)
    writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1")
    conn.execute(
        "INSERT INTO model_versions (model_version, kind, params, feature_stats) "
        "SELECT 'other_v', kind, params, feature_stats FROM model_versions "
        "WHERE model_version = 'baseline_v1' "
        "ON CONFLICT DO NOTHING"
    )
    conn.commit()
    writes.upsert_predictions(
        conn, frame[["event_id", "ts_utc"]].assign(y_hat=1.0), "other_v", "r/1", interval=INTERVAL
    )
    # other_v's rows, every column (predicted_at_utc and written_by_run too), before and after
    other_rows = (
        "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY event_id)) FROM predictions AS t "
        "WHERE model_version = 'other_v'"
    )
    before = conn.execute(other_rows).fetchone()
    mine = (
        "SELECT count(*), min(y_hat), max(y_hat), min(written_by_run), max(written_by_run) "
        "FROM predictions WHERE model_version = 'baseline_v1'"
    )
    for y_hat, run, counts in ((2.0, "r/2", (20, 0)), (3.0, "r/3", (0, 20))):  # insert, then merge
        result = writes.upsert_predictions(
            conn, frame[["event_id", "ts_utc"]].assign(y_hat=y_hat), "baseline_v1", run, interval=INTERVAL
        )
        assert (result.inserted, result.updated) == counts
        assert conn.execute(mine).fetchone() == (20, y_hat, y_hat, run, run)
        assert conn.execute(other_rows).fetchone() == before
    assert before is not None and before[0] == 20


def test_a_failed_load_leaves_nothing_half_written(conn: psycopg.Connection[Any]) -> None:
    frame = processed(50)
    writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1")
    before = table_digest(conn, "processed_data", "event_id")
    broken = frame.copy()
    broken.loc[:, "f1"] = 1.0
    broken.loc[49, "ts_utc"] = INTERVAL.end + timedelta(hours=1)  # violates the interval CHECK
    with pytest.raises(psycopg.errors.CheckViolation):
        writes.upsert_processed(conn, broken, INTERVAL, "baseline_v1")
    assert table_digest(conn, "processed_data", "event_id") == before


def test_an_event_stored_under_another_interval_is_refused_not_moved(conn: psycopg.Connection[Any]) -> None:
    earlier = Interval(INTERVAL.start - timedelta(minutes=10), INTERVAL.start)
    first = processed(20, earlier)
    writes.upsert_processed(conn, first, earlier, "baseline_v1")
    before = conn.execute("SELECT t::text FROM processed_data t WHERE event_id = %s", (first["event_id"][0],))
    held = before.fetchone()
    # the same event id delivered again, inside the next interval: the plain COPY meets the primary
    # key, the savepoint rolls it back, and the merge leaves the stored row where it is
    again = processed(30).assign(event_id=lambda f: f["event_id"].where(f.index != 0, first["event_id"][0]))
    merged = writes.upsert_processed(conn, again, INTERVAL, "baseline_v1")
    assert (merged.result.staged, merged.result.inserted, merged.result.updated) == (30, 29, 0)
    assert merged.loaded_rows == 29
    assert merged.redelivered.to_dict("records") == [
        {"event_id": first["event_id"][0], "held_start": earlier.start, "held_end": earlier.end}
    ]
    after = conn.execute("SELECT t::text FROM processed_data t WHERE event_id = %s", (first["event_id"][0],))
    assert after.fetchone() == held  # not moved, not changed
    assert conn.execute("SELECT count(*) FROM processed_data").fetchone() == (49,)


def test_predictions_copy_straight_in_once_then_merge(conn: psycopg.Connection[Any]) -> None:
    frame = processed(40)
    writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1")
    scored = frame[["event_id", "ts_utc"]].assign(y_hat=0.5)
    first = writes.upsert_predictions(conn, scored, "baseline_v1", "d/r1", copy_first=True, interval=INTERVAL)
    assert (first.inserted, first.updated) == (40, 0)
    before = table_digest(conn, "predictions", "event_id, model_version")
    # a rerun meets the stored keys and merges: nothing changes, not even written_by_run
    again = writes.upsert_predictions(conn, scored, "baseline_v1", "d/r2", copy_first=True, interval=INTERVAL)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 40)
    assert table_digest(conn, "predictions", "event_id, model_version") == before
    with pytest.raises(writes.MissingReferenceError, match="not registered"):
        writes.upsert_predictions(conn, scored, "no_such_v", "d/r3", copy_first=True, interval=INTERVAL)


def test_batches_of_a_file_load_like_one_frame(conn: psycopg.Connection[Any]) -> None:
    frame = processed(250)
    parts = [frame.iloc[:100], frame.iloc[100:100], frame.iloc[100:]]
    result = writes.upsert_processed(conn, lambda: iter(parts), INTERVAL, "baseline_v1").result
    assert (result.staged, result.inserted) == (250, 250)
    content = (
        "SELECT md5(string_agg((t.event_id, t.ts_utc, t.f1, t.f2, t.f3, t.f1_z, t.f2_z, t.f3_z, "
        "t.f1_imputed, t.f2_imputed, t.f3_imputed, t.normalized_with, t.interval_start, "
        "t.interval_end)::text, "
        "'|' ORDER BY event_id)) FROM processed_data t"
    )
    in_batches = conn.execute(content).fetchone()
    conn.execute("TRUNCATE processed_data")
    writes.upsert_processed(conn, frame, INTERVAL, "baseline_v1")
    assert conn.execute(content).fetchone() == in_batches
