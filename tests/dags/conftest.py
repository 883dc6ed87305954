"""Fixtures of the DAG tests: the parsed DAGs and a second, empty warehouse."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import ADMIN_DSN, ROOT, url_for


@pytest.fixture(scope="session")
def dags(airflow_db: None) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return dict(bag.dags)


@pytest.fixture
def fresh_warehouse(warehouse_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A second, empty warehouse database that the DAGs' `warehouse` connection points at."""
    name = "etlml_init_" + psycopg.conninfo.conninfo_to_dict(warehouse_dsn)["dbname"].rsplit("_", 1)[-1]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", url_for(name))
        try:
            yield url_for(name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
