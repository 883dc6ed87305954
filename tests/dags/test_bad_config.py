"""Bad configuration fails the first task, before anything is written, with a message that says what to do."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from etlml.interval import Interval
from etlml.steps.extract import extract
from etlml.steps.run import RunContext
from etlml.warehouse import connection
from tests.dags.test_dag_runs import LOGICAL, PIPELINE

pytestmark = [pytest.mark.airflow, pytest.mark.db]

RUN = RunContext("10_etl_ml_pipeline", "manual__test", Interval(LOGICAL - timedelta(minutes=10), LOGICAL))


def task_states(dag_run: Any) -> dict[str, tuple[str, int]]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances(session=session)
        }


def test_unapplied_migrations_fail_extract_once_and_write_nothing(
    dags: dict[str, Any], fresh_warehouse: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="run `etlml db migrate` or trigger DAG 00_init_schema"):
        extract(RUN, simulated_events=10)
    dag_run = dags[PIPELINE].test(logical_date=datetime(2026, 11, 25, 18, 40, tzinfo=UTC))
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["extract"] == ("failed", 1)  # no retry: a retry cannot apply migrations
    assert {states[t][0] for t in ("transform", "load_processed", "predict", "store_predictions")} == {
        "upstream_failed"
    }
    with psycopg.connect(fresh_warehouse) as conn:
        assert conn.execute("SELECT to_regclass('processed_data')").fetchone() == (None,)


def test_a_missing_connection_names_the_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE")
    with pytest.raises(AirflowFailException, match="AIRFLOW_CONN_WAREHOUSE=postgresql://"):
        extract(RUN, simulated_events=10)


def test_an_unreachable_warehouse_is_retried_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://nobody@127.0.0.1:1/nowhere")
    with pytest.raises(
        connection.WarehouseUnavailableError, match="check that PostgreSQL is running"
    ) as caught:
        extract(RUN, simulated_events=10)
    assert not isinstance(caught.value, connection.ConnectionMissingError)
