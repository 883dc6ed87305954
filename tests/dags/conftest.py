"""Fixtures of the DAG tests: the parsed DAGs."""

from typing import Any

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def dags(airflow_db: None) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    # deadlines included: dag.test() of the pipeline finishes as `airflow dags test` does for a user
    # (etlml.airflow_compat), so no test runs a DAG other than the one the scheduler runs
    return dict(bag.dags)


@pytest.fixture(scope="session")
def parsed_dags(airflow_db: None) -> dict[str, Any]:
    """The DAGs exactly as parsed (the same as :func:`dags`, kept for the tests that name it)."""
    from airflow.dag_processing.dagbag import DagBag

    return dict(DagBag(dag_folder=str(ROOT / "dags")).dags)
