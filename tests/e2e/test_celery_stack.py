"""CeleryExecutor: tasks run in a separate `airflow celery worker` and still find files and connections."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.pipeline_checks import BATCH, PIPELINE, check_rows, run_both_dags

pytestmark = [pytest.mark.e2e, pytest.mark.db]


SHARDS = 3


@pytest.fixture(scope="module")
def finished_run(celery_stack: Stack) -> dict[str, Any]:
    # the interval in shards of 100 events: the worker runs each shard's mapped task instances
    return run_both_dags(celery_stack, shard_size=BATCH // SHARDS)


def test_celery_worker_runs_the_pipeline_and_rows_land(
    celery_stack: Stack, finished_run: dict[str, Any]
) -> None:
    assert finished_run["state"] == "success"
    check_rows(celery_stack, finished_run)


def test_tasks_ran_in_the_worker_process(celery_stack: Stack, finished_run: dict[str, Any]) -> None:
    worker_log = (celery_stack.logs / "celery.log").read_text(errors="replace").splitlines()
    run_path = f"dag_id={PIPELINE}/run_id={finished_run['dag_run_id']}"
    executed = {
        task_instance(line)
        for line in worker_log
        if "Executing workload in Celery" in line and run_path in line
    }
    mapped = {f"{task}[{i}]" for task in ("transform", "predict", "store_predictions") for i in range(SHARDS)}
    assert executed == {"wait_for_window", "extract", "load_processed", *mapped}


def task_instance(log_line: str) -> str:
    """``task`` or ``task[i]`` from a log path ``.../task_id=<task>[/map_index=<i>]/attempt=<n>.log``."""
    name = log_line.split("/task_id=")[1].split("/attempt=", maxsplit=1)[0]
    task, _, index = name.partition("/map_index=")
    return f"{task}[{index}]" if index else task
