"""The DAG files parse cleanly and declare what the pipeline promises."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.airflow

PIPELINE_ORDER = ["wait_for_window", "extract", "transform", "load_processed", "predict", "store_predictions"]


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors_and_both_dags(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {
        "00_init_schema",
        "10_etl_ml_pipeline",
        "15_ingest_labels",
        "20_rescore",
        "30_monitor",
        "40_train_challenger",
        "90_housekeeping",
    }


def test_pipeline_tasks_run_in_order(dagbag: Any) -> None:
    dag = dagbag.dags["10_etl_ml_pipeline"]
    assert sorted(dag.task_ids) == sorted(PIPELINE_ORDER)
    for upstream, downstream in pairwise(PIPELINE_ORDER):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    assert dag.get_task("transform").downstream_task_ids == {"load_processed", "predict"}
    assert [t.task_id for t in dag.topological_sort()] == PIPELINE_ORDER


def test_pipeline_schedule_has_a_real_ten_minute_interval(dagbag: Any) -> None:
    from airflow.timetables.interval import CronDataIntervalTimetable

    dag = dagbag.dags["10_etl_ml_pipeline"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.summary == "*/10 * * * *"
    assert dag.max_active_runs == 1
    # every interval from ETLML_START_DATE on, oldest first: downtime is caught up, never skipped
    assert dag.catchup is True
    assert dag.start_date == datetime(2026, 1, 1, tzinfo=UTC)  # the documented default


def test_pipeline_start_date_comes_from_etlml_start_date(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("ETLML_START_DATE", "2026-11-26T09:20:00+01:00")
    bag = DagBag(dag_folder=str(ROOT / "dags" / "10_etl_ml_pipeline.py"))
    assert bag.dags["10_etl_ml_pipeline"].start_date == datetime(2026, 11, 26, 8, 20, tzinfo=UTC)
    monkeypatch.setenv("ETLML_START_DATE", "2026-11-26 08:20")  # no offset: which zone?
    bag = DagBag(dag_folder=str(ROOT / "dags" / "10_etl_ml_pipeline.py"))
    [error] = bag.import_errors.values()
    assert "ETLML_START_DATE must be an ISO-8601 date and time with a UTC offset" in error


def test_pipeline_retries_with_backoff_and_its_params(dagbag: Any) -> None:
    dag = dagbag.dags["10_etl_ml_pipeline"]
    for task in dag.tasks:
        assert task.retries == 3
        assert task.retry_exponential_backoff
        assert task.max_retry_delay == timedelta(minutes=5)
    assert dag.params["simulated_events"] == 200
    assert dag.params["batch_size"] is None  # the deprecated name, still accepted
    assert dag.params["normalization"] == "model"


def test_init_schema_is_manual_and_migrates_before_checking(dagbag: Any) -> None:
    dag = dagbag.dags["00_init_schema"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert dag.get_task("check").upstream_task_ids == {"migrate"}
    assert all(task.retries >= 1 for task in dag.tasks)


def test_rescore_is_manual_with_version_and_window_params(dagbag: Any) -> None:
    dag = dagbag.dags["20_rescore"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert dag.task_ids == ["rescore"]
    assert {"model_version", "from", "to", "chunk_size"} <= set(dag.params)
    assert dag.params["chunk_size"] == 50_000


def test_train_challenger_is_manual_trains_then_shadows(dagbag: Any) -> None:
    dag = dagbag.dags["40_train_challenger"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert dag.get_task("shadow").upstream_task_ids == {"train"}
    assert {"name", "estimator", "from", "to", "description"} == set(dag.params)
    assert dag.params["estimator"] == "hist_gradient_boosting"
    assert dag.max_active_runs == 1
