"""Work-arounds for defects of the Airflow release etlml pins, each limited to the releases that have it.

``airflow dags test`` of a DAG with a ``deadline`` (``10_etl_ml_pipeline``) runs every task, marks the
run successful and then exits 1 on Airflow 3.3.1 and 3.3.2 (apache/airflow issue 73428): ``DAG.test()``
schedules from an in-memory copy of the DAG whose ``deadline`` holds the encoded alerts, where the
scheduler's copy (read from the metadata database) holds the ids of their ``deadline_alert`` rows, and
``DagRun.update_state`` looks every entry up by id to prune the run's deadlines on success. Patched
here: ``DeadlineAlert.get_by_id`` given an encoded alert (a mapping) decodes it instead of querying,
which is what the proposed fix (apache/airflow pull request 73430) does at its call site. The
scheduler's path (ids) is unchanged, so its deadlines are detected, pruned and alerted as before.

Remove this module once the pinned Airflow has the fix: ``tests/unit/test_airflow_compat.py`` fails
on any other release until it is reviewed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

# Airflow releases measured with the defect; on any other release nothing is patched.
DEADLINE_DAG_TEST_AFFECTED = frozenset({"3.3.1", "3.3.2"})
_PATCHED = "_etlml_decodes_encoded_alerts"


def airflow_version() -> str:
    return version("apache-airflow-core")


def patch_dag_test_deadlines() -> bool:
    """Let ``airflow dags test`` / ``dag.test()`` finish a successful run of a DAG with a deadline.

    Idempotent; a no-op (``False``) on a release without the defect."""
    if airflow_version() not in DEADLINE_DAG_TEST_AFFECTED:
        return False
    from airflow.models.deadline_alert import DeadlineAlert

    if getattr(DeadlineAlert.get_by_id, _PATCHED, False):
        return True
    by_id: Callable[..., Any] = DeadlineAlert.get_by_id

    def get_by_id(cls: type[DeadlineAlert], deadline_alert_id: Any, /, **kwargs: Any) -> Any:
        if isinstance(deadline_alert_id, Mapping):
            return decoded_alert(cls, deadline_alert_id)
        return by_id(deadline_alert_id, **kwargs)

    setattr(get_by_id, _PATCHED, True)
    DeadlineAlert.get_by_id = classmethod(get_by_id)  # type: ignore[method-assign, assignment]
    return True


def decoded_alert(cls: type[Any], encoded: Mapping[str, Any]) -> Any:
    """A transient (never added to a session) ``deadline_alert`` row of an encoded alert."""
    data = encoded.get("__var", encoded)
    return cls(
        name=data.get("name"),
        reference=data["reference"],
        interval=data["interval"],
        callback_def=data["callback"],
    )
