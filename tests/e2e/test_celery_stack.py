"""CeleryExecutor: tasks run in a separate `airflow celery worker` and still find files and connections."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from scripts import localstack
from tests.e2e.conftest import AIRFLOW, Stack
from tests.e2e.pipeline_checks import BATCH, PIPELINE, check_rows, first_logical_date, run_both_dags

pytestmark = [pytest.mark.e2e, pytest.mark.db]


SHARDS = 3
EVENTS = 400_000


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


def test_a_worker_killed_mid_task_is_retried_and_the_run_succeeds(
    celery_stack: Stack, finished_run: dict[str, Any]
) -> None:
    """SIGKILL of the Celery worker's whole process group while it runs extract: the scheduler sees
    the task's heartbeat stop (timeout set to 30 s for this stack), fails that attempt, and the retry
    runs on a new worker; the run succeeds and its rows are the interval's."""
    api = celery_stack.api
    # the finished run's interval again (a logical date in the past is the only kind a manual run
    # starts at once), now with enough events for extract to run a few seconds
    logical = first_logical_date(celery_stack) + timedelta(seconds=1)
    run_id = api.trigger(PIPELINE, logical_date=logical, conf={"simulated_events": EVENTS})
    deadline = time.monotonic() + 180
    while api.task_states(PIPELINE, run_id).get("extract") != "running":
        assert time.monotonic() < deadline, api.task_states(PIPELINE, run_id)
        time.sleep(0.3)
    [worker] = [c for c in celery_stack.components if c.name == "celery worker"]
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(timeout=30)
    replacement = localstack.Component.start(
        "celery worker", [AIRFLOW, "celery", "worker"], celery_stack.env, celery_stack.logs / "celery-2.log"
    )
    celery_stack.components.append(replacement)  # stopped with the stack
    assert api.wait_for_run(PIPELINE, run_id, timeout=600, watch=[replacement]) == "success", api.task_states(
        PIPELINE, run_id
    )
    extract = f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/extract"
    assert api._call("GET", extract)["try_number"] == 2
    # the killed attempt, failed by the scheduler, then the retry that succeeded
    tries = api._call("GET", f"{extract}/tries")["task_instances"]
    assert sorted((t["try_number"], t["state"]) for t in tries) == [(1, "failed"), (2, "success")]
    run = api.run(PIPELINE, run_id)
    assert run["data_interval_start"] == finished_run["data_interval_start"]
    with psycopg.connect(celery_stack.dbs.warehouse_url) as conn:
        stored = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE p.y_hat = 0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z) "
            "FROM processed_data d JOIN predictions p USING (event_id) "
            "WHERE d.interval_start = %s AND p.model_version = 'baseline_v1'",
            (datetime.fromisoformat(run["data_interval_start"]),),
        ).fetchone()
    assert stored == (EVENTS, EVENTS)


def task_instance(log_line: str) -> str:
    """``task`` or ``task[i]`` from a log path ``.../task_id=<task>[/map_index=<i>]/attempt=<n>.log``."""
    name = log_line.split("/task_id=")[1].split("/attempt=", maxsplit=1)[0]
    task, _, index = name.partition("/map_index=")
    return f"{task}[{index}]" if index else task
