"""Fixtures of the DAG tests: the parsed DAGs."""

from typing import Any

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def dags(airflow_db: None) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return dict(bag.dags)
