"""The work-around for `airflow dags test` of a DAG with a deadline: limited to the Airflow releases with
the defect, and doing there what the scheduler's path does."""

from __future__ import annotations

from datetime import timedelta

import pytest

from etlml import airflow_compat


def test_the_pinned_airflow_is_one_the_work_around_was_measured_on() -> None:
    # On an upgrade: run tests/dags/test_airflow_cli.py without the patch; if `airflow dags test` of
    # 10_etl_ml_pipeline exits 0, delete etlml.airflow_compat, else add the release to the set.
    assert airflow_compat.airflow_version() in airflow_compat.DEADLINE_DAG_TEST_AFFECTED


def test_nothing_is_patched_on_a_release_without_the_defect(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.models.deadline_alert import DeadlineAlert

    monkeypatch.setattr(DeadlineAlert, "get_by_id", DeadlineAlert.get_by_id)  # restored afterwards
    monkeypatch.setattr(airflow_compat, "airflow_version", lambda: "3.4.0")
    before = DeadlineAlert.get_by_id
    assert airflow_compat.patch_dag_test_deadlines() is False
    assert DeadlineAlert.get_by_id == before


def test_an_encoded_alert_is_decoded_where_the_scheduler_looks_an_id_up() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.deadline_alert import DeadlineAlert
    from airflow.serialization.definitions.deadline import SerializedReferenceModels
    from airflow.serialization.serialized_objects import DagSerialization

    from tests.conftest import ROOT

    assert airflow_compat.patch_dag_test_deadlines() is True
    assert airflow_compat.patch_dag_test_deadlines() is True  # idempotent

    dag = DagBag(dag_folder=str(ROOT / "dags" / "10_etl_ml_pipeline.py")).dags["10_etl_ml_pipeline"]
    [encoded] = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).deadline
    alert = DeadlineAlert.get_by_id(encoded)
    assert alert.reference_class is SerializedReferenceModels.DagRunLogicalDateDeadline
    assert alert.reference_class in SerializedReferenceModels.TYPES.DAGRUN
    assert alert.name == "finished 15 minutes after the interval"
    assert alert.interval["__data__"] == timedelta(minutes=25).total_seconds()
