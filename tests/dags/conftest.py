"""Fixtures of the DAG tests: the parsed DAGs."""

from typing import Any

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def dags(airflow_db: None) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    # dag.test() of Airflow 3.3.2 cannot finish a run of a DAG with a deadline: its copy of the DAG
    # holds the encoded alerts where the scheduler's holds their ids, and the success path looks
    # them up by id. Deadlines are the scheduler's business: the parsed DAG's deadline is checked in
    # test_monitor_runs.py (and what its callback does when it is missed), not here.
    for dag in bag.dags.values():
        dag.deadline = None
    return dict(bag.dags)


@pytest.fixture(scope="session")
def parsed_dags(airflow_db: None) -> dict[str, Any]:
    """The DAGs exactly as parsed, deadlines included (not for dag.test())."""
    from airflow.dag_processing.dagbag import DagBag

    return dict(DagBag(dag_folder=str(ROOT / "dags")).dags)
