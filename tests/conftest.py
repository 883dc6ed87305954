"""Shared fixtures: a throwaway warehouse database on the local PostgreSQL and an Airflow home.

Airflow reads its configuration when first imported, so the environment is set here, at import
time, before any test module imports Airflow or etlml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hypothesis
import psycopg
import pytest
from psycopg import conninfo, sql

ROOT = Path(__file__).resolve().parents[1]
# The server the tests create their databases on (trust auth on the local cluster).
ADMIN_DSN = os.environ.get("ETLML_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
WAREHOUSE_DB = f"etlml_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
WORK_DIR = Path(tempfile.mkdtemp(prefix="etlml-tests-"))


def dsn_for(dbname: str) -> str:
    info = conninfo.conninfo_to_dict(ADMIN_DSN)
    info["dbname"] = dbname
    return conninfo.make_conninfo(**info)


def url_for(dbname: str) -> str:
    info = conninfo.conninfo_to_dict(ADMIN_DSN)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    return f"postgresql://{user}{password}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{dbname}"


os.environ.update(
    {
        "AIRFLOW_HOME": str(WORK_DIR / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW_CONN_WAREHOUSE": url_for(WAREHOUSE_DB),
        "ETLML_STORAGE_ROOT": (WORK_DIR / "storage").as_uri(),
    }
)
os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True)

# Property tests check what holds, not how fast: Hypothesis's default 200 ms deadline per example fails
# them when the end-to-end stacks load the machine beside them. Speed is make bench's business.
hypothesis.settings.register_profile("etlml", deadline=None)
hypothesis.settings.load_profile("etlml")


def pytest_sessionfinish(session: pytest.Session) -> None:
    shutil.rmtree(WORK_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def warehouse_dsn() -> Iterator[str]:
    """An empty database for this test session, dropped at its end."""
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"tests need the local PostgreSQL at {ADMIN_DSN} (set ETLML_TEST_ADMIN_DSN): {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(WAREHOUSE_DB)))
        try:
            yield dsn_for(WAREHOUSE_DB)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(WAREHOUSE_DB))
            )


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Create an empty database on the test server, yield its DSN, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield dsn_for(name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def scratch_role(
    password: str, *, databases: tuple[str, ...] = (), in_roles: tuple[str, ...] = ()
) -> Iterator[str]:
    """A login role on the test server with ``password``, dropped afterwards with what it was granted in
    ``databases`` (DSNs)."""
    name = f"etlml_role_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), password))
        for role in in_roles:
            admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(name)))
        try:
            yield name
        finally:
            for dsn in databases:
                with psycopg.connect(dsn, autocommit=True) as db:
                    db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def url_as(role: str, password: str, dsn: str) -> str:
    """``postgresql://role:password@host:port/db`` of the database of ``dsn``: an Airflow connection URI."""
    info = conninfo.conninfo_to_dict(dsn)
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    return f"postgresql://{role}:{password}@{host}:{port}/{info['dbname']}"


def grant_pipeline_role(role: str, password: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """What Compose's airflow-init runs after `etlml db migrate`, as the warehouse's owner (the
    `warehouse` connection): `etlml db grant-pipeline-role ROLE --password-stdin`."""
    import io

    from etlml import cli

    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return cli.main(["db", "grant-pipeline-role", role, "--password-stdin"])


@pytest.fixture
def pipeline_role(fresh_migrated: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """``(role, password)``: a pipeline role granted on :func:`fresh_migrated` the way airflow-init
    grants it; the `warehouse` connection (DAGs, CLI) then logs in as that role. Dropped afterwards."""
    role, password = f"etlml_pipeline_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    try:
        assert grant_pipeline_role(role, password, monkeypatch) == 0
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", url_as(role, password, fresh_migrated))
        yield role, password
    finally:
        with psycopg.connect(fresh_migrated, autocommit=True) as owner:
            if owner.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def fresh_warehouse(warehouse_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A second, empty warehouse database that the `warehouse` connection (DAGs, CLI) points at."""
    with scratch_database("etlml_scratch") as dsn:
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", url_for(conninfo.conninfo_to_dict(dsn)["dbname"]))
        yield dsn


@pytest.fixture
def fresh_migrated(fresh_warehouse: str) -> str:
    """:func:`fresh_warehouse` with every migration applied: a registry the test may change freely."""
    from etlml.warehouse import schema

    with psycopg.connect(fresh_warehouse) as conn:
        schema.migrate(conn)
    return fresh_warehouse


@pytest.fixture(scope="session")
def migrated(warehouse_dsn: str) -> str:
    """The session's warehouse with every migration applied."""
    from etlml.warehouse import schema

    with psycopg.connect(warehouse_dsn) as conn:
        schema.migrate(conn)
    return warehouse_dsn


@pytest.fixture
def conn(migrated: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a migrated warehouse whose event tables start empty."""
    with psycopg.connect(migrated) as connection:
        connection.execute("TRUNCATE processed_data, predictions, rejected_events, run_audit")
        connection.commit()
        yield connection


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata DB (SQLite in the test AIRFLOW_HOME), migrated once per session."""
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
