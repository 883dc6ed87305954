"""Migrations against a real, freshly created PostgreSQL database."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from etlml.errors import ModelError
from etlml.models import loader, serving
from etlml.warehouse import schema
from tests.conftest import scratch_database

pytestmark = pytest.mark.db


@pytest.fixture
def empty_db(warehouse_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with scratch_database("etlml_mig") as dsn, psycopg.connect(dsn) as conn:
        yield conn


def test_migrate_applies_each_file_once(empty_db: psycopg.Connection[Any]) -> None:
    shipped = schema.available()
    assert [m.version for m in schema.migrate(empty_db)] == [m.version for m in shipped]
    assert schema.migrate(empty_db) == []
    recorded = schema.applied(empty_db)
    assert recorded == {m.version: m.checksum for m in shipped}
    schema.check(empty_db)


def test_check_on_an_empty_database_says_what_to_run(empty_db: psycopg.Connection[Any]) -> None:
    with pytest.raises(schema.MigrationError, match="etlml db migrate"):
        schema.check(empty_db)


def test_an_edited_applied_migration_is_refused(empty_db: psycopg.Connection[Any]) -> None:
    schema.migrate(empty_db)
    empty_db.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    empty_db.commit()
    with pytest.raises(schema.MigrationError, match="changed after it was applied"):
        schema.migrate(empty_db)


def test_a_migration_newer_than_the_code_is_refused(empty_db: psycopg.Connection[Any]) -> None:
    schema.migrate(empty_db)
    empty_db.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')")
    empty_db.commit()
    with pytest.raises(schema.MigrationError, match="does not ship"):
        schema.check(empty_db)


def test_seeded_champion_is_the_case_study_baseline(conn: psycopg.Connection[Any]) -> None:
    baseline = loader.load(conn, serving.resolve(conn).champion)
    assert baseline.version == "baseline_v1"
    assert dict(baseline.coef) == {"f1": 0.3, "f2": 0.2, "f3": 0.5}
    assert baseline.intercept == 0.0


def test_model_versions_are_immutable(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
        conn.execute("UPDATE model_versions SET params = '{}' WHERE model_version = 'baseline_v1'")
    conn.rollback()
    with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
        conn.execute("DELETE FROM model_versions WHERE model_version = 'baseline_v1'")
    conn.rollback()


def test_unknown_model_version_is_a_clear_error(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(ModelError, match="not registered"):
        loader.load(conn, "no_such_version")


def test_numbers_may_skip_but_a_migration_never_runs_out_of_order(
    empty_db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two branches may each add one (0005 and 0006): with one merged first there is a gap, and the
    other, numbered below one applied, is refused rather than applied after it."""
    real = schema.available()
    later = schema.Migration(real[-1].version + 2, "later", "CREATE TABLE later_one (x int)")
    between = schema.Migration(real[-1].version + 1, "between", "CREATE TABLE between_one (x int)")
    monkeypatch.setattr(schema, "available", lambda: [*real, later])
    assert [m.version for m in schema.migrate(empty_db)] == [*(m.version for m in real), later.version]
    monkeypatch.setattr(schema, "available", lambda: [*real, between, later])
    with pytest.raises(schema.MigrationError, match=f"{between.version:04d}_between is not applied but"):
        schema.migrate(empty_db)
    assert empty_db.execute("SELECT to_regclass('between_one')").fetchone() == (None,)


# Rows of the unpartitioned layout (migrations before 0013), over three days, with every column set.
OLD_ROWS = """
INSERT INTO processed_data (event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed,
                            f3_imputed, normalized_with, interval_start, interval_end, created_at,
                            updated_at)
SELECT 'evt-' || g, s + (g % 600) * interval '1 second', g * 0.5,
       CASE WHEN g % 7 = 0 THEN NULL ELSE -g END, 100 + g % 13, g * 0.01, -g * 0.02, 0.3, false,
       g % 7 = 0, false, 'baseline_v1', s, s + interval '10 min',
       '2026-11-01T00:00Z'::timestamptz + g * interval '1 ms',
       '2026-11-02T00:00Z'::timestamptz + g * interval '1 ms'
FROM generate_series(1, 3000) AS g,
     LATERAL (SELECT '2026-11-20T23:40Z'::timestamptz + (g % 5) * interval '10 min'
                     + (g % 3) * interval '1 day') AS i(s);
INSERT INTO predictions (event_id, model_version, y_hat, ts_utc, predicted_at_utc, written_by_run)
SELECT event_id, 'baseline_v1', f1 * 0.3, ts_utc, updated_at, 'old/run' FROM processed_data;
INSERT INTO rejected_events (interval_start, interval_end, source_file, row_number, reason, message,
                             event_id, raw, written_by_run, rejected_at)
SELECT interval_start, interval_end, 'a.csv', row_number() OVER (ORDER BY event_id), 'bad_value', 'm',
       event_id, convert_to(event_id, 'UTF8') || '\\x00ff'::bytea, 'old/run', updated_at
FROM processed_data WHERE f2 IS NULL;
"""

# Every column of every row, the same before and after (predictions gain interval_start: left out).
CHECKSUMS = {
    "processed_data": "SELECT count(*), md5(string_agg(row(t.*)::text, '|' ORDER BY event_id)) "
    "FROM processed_data t",
    "predictions": "SELECT count(*), md5(string_agg(row(event_id, model_version, y_hat, ts_utc, "
    "predicted_at_utc, written_by_run)::text, '|' ORDER BY event_id, model_version)) FROM predictions",
    "rejected_events": "SELECT count(*), md5(string_agg(row(t.*)::text, '|' "
    "ORDER BY interval_start, source_file, row_number)) FROM rejected_events t",
}


def test_the_partitioning_migration_keeps_every_row_as_it_was(
    empty_db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = schema.available()
    monkeypatch.setattr(schema, "available", lambda: [m for m in shipped if m.version < 13])
    schema.migrate(empty_db)
    empty_db.execute(OLD_ROWS)
    empty_db.commit()
    before = {table: empty_db.execute(sql).fetchone() for table, sql in CHECKSUMS.items()}
    assert before["processed_data"][0] == 3000 and before["rejected_events"][0] == 428

    monkeypatch.setattr(schema, "available", lambda: shipped)
    assert [m.version for m in schema.migrate(empty_db)] == [m.version for m in shipped if m.version >= 13]
    schema.check(empty_db)
    assert {table: empty_db.execute(sql).fetchone() for table, sql in CHECKSUMS.items()} == before
    # partitioned, each row in its interval's day, and each prediction in its event's interval
    layout = empty_db.execute(
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = ANY "
        "('{processed_data,predictions,rejected_events}'::regclass[])"
    ).fetchone()
    assert layout == (3,)
    days = empty_db.execute(
        "SELECT tableoid::regclass::text, count(*) FROM processed_data GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [d for d, _ in days] == [
        "processed_data_p20261120",
        "processed_data_p20261121",
        "processed_data_p20261122",
        "processed_data_p20261123",
    ]
    mismatched = empty_db.execute(
        "SELECT count(*) FROM predictions p JOIN processed_data d USING (event_id) "
        "WHERE p.interval_start <> d.interval_start"
    ).fetchone()
    assert mismatched == (0,)


def test_the_partitioning_migration_refuses_orphan_predictions_and_changes_nothing(
    empty_db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = schema.available()
    monkeypatch.setattr(schema, "available", lambda: [m for m in shipped if m.version < 13])
    schema.migrate(empty_db)
    empty_db.execute(OLD_ROWS)
    empty_db.execute("DELETE FROM processed_data WHERE event_id IN ('evt-1', 'evt-2')")
    empty_db.commit()
    monkeypatch.setattr(schema, "available", lambda: shipped)
    with pytest.raises(
        psycopg.errors.RaiseException, match="2 of 3000 predictions have no processed_data row"
    ):
        schema.migrate(empty_db)
    empty_db.rollback()
    assert max(schema.applied(empty_db)) < 13
    assert empty_db.execute("SELECT count(*) FROM pg_partitioned_table").fetchone() == (0,)


def test_migration_0016_dates_landing_labels_and_queues_what_the_old_sweep_would_have_found(
    empty_db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse with labels from a landing file and from the simulator, one interval monitored
    after its labels, one monitored before its last label, one never monitored, and a comparison
    that stored Infinity."""
    shipped = schema.available()
    monkeypatch.setattr(schema, "available", lambda: [m for m in shipped if m.version < 16])
    schema.migrate(empty_db)
    empty_db.execute(
        """
        INSERT INTO labels (event_id, y_true, observed_at, interval_start, interval_end, source_file,
                            written_by_run, updated_at)
        VALUES ('a', 1, now(), '2026-11-20 12:00Z', '2026-11-20 12:10Z', 'labels/2026-11-20/1230/a.csv', 'r',
                '2026-11-20 12:35Z'),
               ('b', 1, now(), '2026-11-20 12:10Z', '2026-11-20 12:20Z', 'simulator', 'r',
                '2026-11-20 12:45Z'),
               ('c', 1, now(), '2026-11-20 12:20Z', '2026-11-20 12:30Z', 'simulator', 'r',
                '2026-11-20 12:55Z');
        INSERT INTO model_performance (interval_start, interval_end, model_version, n_predictions, n_labeled,
                                       computed_at)
        VALUES ('2026-11-20 12:00Z', '2026-11-20 12:10Z', 'baseline_v1', 1, 1, '2026-11-20 12:40Z'),
               ('2026-11-20 12:10Z', '2026-11-20 12:20Z', 'baseline_v1', 1, 0, '2026-11-20 12:40Z');
        INSERT INTO model_comparisons (champion, candidate, window_from, window_to, n, champion_rmse,
                                       bootstrap_samples, seed, actor)
        VALUES ('baseline_v1', 'baseline_v1', '2026-11-20Z', '2026-11-21Z', 1, 'Infinity', 1, 0, 't');
        """
    )
    empty_db.commit()
    monkeypatch.setattr(schema, "available", lambda: shipped)
    assert [m.version for m in schema.migrate(empty_db)] == [m.version for m in shipped if m.version >= 16]
    schema.check(empty_db)
    delivered = dict(empty_db.execute("SELECT event_id, delivered_in::text FROM labels").fetchall())
    assert delivered == {"a": "2026-11-20 12:30:00+00", "b": None, "c": None}
    queued = empty_db.execute("SELECT interval_start::text FROM monitor_due ORDER BY 1").fetchall()
    assert queued == [("2026-11-20 12:10:00+00",), ("2026-11-20 12:20:00+00",)]
    assert empty_db.execute("SELECT champion_rmse FROM model_comparisons").fetchone() == (None,)
