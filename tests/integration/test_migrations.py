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


def test_a_migration_pending_below_an_applied_one_is_refused(empty_db: psycopg.Connection[Any]) -> None:
    schema.migrate(empty_db)
    # as if migration 2 had arrived (merged from another branch) after 3 and later were applied
    empty_db.execute("DELETE FROM schema_migrations WHERE version = 2")
    empty_db.commit()
    with pytest.raises(schema.MigrationError, match="0002_seed_baseline_v1 are numbered below"):
        schema.migrate(empty_db)
    assert 2 not in schema.applied(empty_db)
