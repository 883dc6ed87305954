"""Faults under a real scheduler (`airflow standalone`, LocalExecutor): the process of
``load_processed`` SIGKILLed inside its COPY, and the warehouse's PostgreSQL stopped with
``-m immediate`` under a load. Airflow fails the attempt by itself and its retry (try 2, exactly)
succeeds; the interval's rows then equal, row for row, a clean run of the same interval.

The warehouse is a throwaway cluster of this module's own (never the shared server); the heartbeat
timeout is short for this stack. A manual run's logical date is the stack's start date, so its
interval ends there, as in the other end-to-end suites."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import AIRFLOW, Stack, _start_stack
from tests.e2e.pipeline_checks import INIT, PIPELINE, first_logical_date
from tests.pgcluster import Cluster, throwaway_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.db]

EVENTS = 250_000
MONITOR = "30_monitor"
CONTENT = {
    "processed_data": "SELECT count(*), md5(string_agg((event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, "
    "f1_imputed, f2_imputed, f3_imputed, normalized_with, interval_end)::text, '|' ORDER BY event_id)) "
    "FROM processed_data WHERE interval_start = %(s)s",
    "predictions": "SELECT count(*), md5(string_agg((event_id, model_version, y_hat, ts_utc)::text, '|' "
    "ORDER BY event_id, model_version)) FROM predictions WHERE interval_start = %(s)s",
    "orphans": "SELECT count(*), NULL FROM predictions p WHERE NOT EXISTS (SELECT 1 FROM processed_data d "
    "WHERE (d.interval_start, d.event_id) = (p.interval_start, p.event_id))",
}


def content(dsn: str, start: Any) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return {name: tuple(conn.execute(q, {"s": start}).fetchone() or ()) for name, q in CONTENT.items()}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as pg:
        with psycopg.connect(pg.dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE warehouse")
        yield pg


@pytest.fixture(scope="module")
def stack(cluster: Cluster, warehouse_dsn: str, metadata_template: str) -> Iterator[Stack]:
    extra = {
        "AIRFLOW_CONN_WAREHOUSE": cluster.dsn("warehouse"),
        # an attempt whose task process died is failed after 20 s without a heartbeat
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
    for stack in _start_stack("faults", [[AIRFLOW, "standalone"]], extra, template=metadata_template):
        api = stack.api
        api.wait_for_dag(INIT)
        api.unpause(INIT)
        init = api.trigger(INIT)
        assert api.wait_for_run(INIT, init) == "success", api.task_states(INIT, init)
        api.wait_for_dag(MONITOR)
        api.unpause(MONITOR)  # before the pipeline: its predictions events trigger the monitor
        api.wait_for_dag(PIPELINE)
        api.unpause(PIPELINE)
        yield stack


@pytest.fixture(scope="module")
def clean(cluster: Cluster, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The interval's rows after a run of its steps that nothing disturbed, in a database of its own."""
    start = first_logical_date(stack) - timedelta(minutes=10)
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE clean")
    work = tmp_path_factory.mktemp("clean")
    env = {**os.environ, "AIRFLOW_CONN_WAREHOUSE": cluster.dsn("clean"), "ETLML_STORAGE_ROOT": work.as_uri()}
    with psycopg.connect(cluster.dsn("clean")) as conn:
        from etlml.warehouse import schema

        schema.migrate(conn)
    for phase in ("extract", "load", "score"):
        args = [sys.executable, "-m", "tests.faults.chain", phase, str(work / "state.json"), "clean"]
        done = subprocess.run(
            [*args, start.isoformat(), str(EVENTS)],
            cwd=ROOT,
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    found = content(cluster.dsn("clean"), start)
    assert found["processed_data"][0] == found["predictions"][0] == EVENTS and found["orphans"][0] == 0
    return found


def copy_backend(dsn: str, table: str | None, timeout: float = 300) -> int:
    """The server pid of the session COPYing into ``table`` (``None``: into any table, as a load of an
    interval that holds rows COPYs into its staging table), once it has taken rows."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT pid FROM pg_stat_progress_copy WHERE datname = current_database() "
                "AND (%(t)s::text IS NULL OR relid = %(t)s::regclass) AND tuples_processed > 0",
                {"t": table},
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.02)
    pytest.fail(f"no COPY into {table or 'any table'} within {timeout:.0f} s")


def ancestors(pid: int) -> Iterator[int]:
    while pid > 1:
        yield pid
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid, after the command's name


def client_process(dsn: str, backend: int, stack: Stack) -> int:
    """The local process holding the client end of ``backend``'s connection: the task's own process
    (checked to descend from one of the stack's components)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT client_port FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone()
    assert row is not None and row[0] is not None
    port = f"{int(row[0]):04X}"
    inodes = {
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split()) and fields[1].endswith(f":{port}")
    }
    components = {c.proc.pid for c in stack.components}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            assert components & set(ancestors(int(proc.name))), f"pid {proc.name} is not the stack's"
            return int(proc.name)
    pytest.fail(f"no local process holds the client end of backend {backend}")


def wait_until_running(stack: Stack, run_id: str, task_id: str, timeout: float = 300) -> None:
    """Until the run's task is running: one run of the DAG at a time, so a COPY then seen is its own
    (not that of a scheduled run of the next interval)."""
    deadline = time.monotonic() + timeout
    while stack.api.task_states(PIPELINE, run_id).get(task_id) != "running":
        assert time.monotonic() < deadline, stack.api.task_states(PIPELINE, run_id)
        time.sleep(0.1)


def tries(stack: Stack, run_id: str, task_id: str) -> list[tuple[int, str]]:
    path = f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
    return sorted((t["try_number"], t["state"]) for t in stack.api._call("GET", path)["task_instances"])


def trigger(stack: Stack, seconds: int) -> str:
    """A manual run of the interval that ends at the stack's start date (``seconds`` past it: a run of
    its own; the scheduled run of the next interval has the start date itself as its logical date)."""
    logical = first_logical_date(stack) + timedelta(seconds=seconds)
    return stack.api.trigger(PIPELINE, logical_date=logical, conf={"simulated_events": EVENTS})


def test_sigkill_inside_load_processeds_copy_is_failed_and_retried_by_airflow(
    stack: Stack, cluster: Cluster, clean: dict[str, Any]
) -> None:
    run_id = trigger(stack, 1)
    dsn = cluster.dsn("warehouse")
    wait_until_running(stack, run_id, "load_processed")
    task = client_process(dsn, copy_backend(dsn, "processed_data"), stack)
    os.kill(task, signal.SIGKILL)
    assert stack.api.wait_for_run(PIPELINE, run_id, timeout=600) == "success", stack.api.task_states(
        PIPELINE, run_id
    )
    assert tries(stack, run_id, "load_processed") == [(1, "failed"), (2, "success")]
    assert content(dsn, first_logical_date(stack) - timedelta(minutes=10)) == clean


def test_postgres_restarted_under_load_processed_is_retried_by_airflow(
    stack: Stack, cluster: Cluster, clean: dict[str, Any]
) -> None:
    run_id = trigger(stack, 2)
    dsn = cluster.dsn("warehouse")
    wait_until_running(stack, run_id, "load_processed")
    copy_backend(dsn, None)  # the interval holds rows: the load COPYs into its staging table
    cluster.stop_immediate()
    cluster.start()
    assert stack.api.wait_for_run(PIPELINE, run_id, timeout=600) == "success", stack.api.task_states(
        PIPELINE, run_id
    )
    assert tries(stack, run_id, "load_processed") == [(1, "failed"), (2, "success")]
    assert content(dsn, first_logical_date(stack) - timedelta(minutes=10)) == clean


def asset_triggered_runs(stack: Stack, at_least: int, timeout: float = 300) -> list[dict[str, Any]]:
    """The monitor's runs the ``predictions`` asset triggered, once ``at_least`` have finished."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in stack.api.runs(MONITOR) if r["run_type"] == "asset_triggered"]
        done = [r for r in runs if r["state"] in {"success", "failed"}]
        if len(done) >= at_least and len(done) == len(runs):
            return done
        assert time.monotonic() < deadline, runs
        time.sleep(2)


def named_intervals(stack: Stack, run_id: str) -> set[str]:
    """The intervals the asset events that triggered a monitor run name, as ``interval_start``."""
    path = f"/api/v2/dags/{MONITOR}/dagRuns/{run_id}/upstreamAssetEvents"
    events = stack.api._call("GET", path)["asset_events"]
    return {datetime.fromisoformat(e["extra"]["interval_start"]).isoformat() for e in events}


def test_the_predictions_asset_event_triggers_30_monitor_for_the_intervals_it_names(
    stack: Stack, cluster: Cluster
) -> None:
    """The pipeline runs above stored predictions; each store emitted a ``predictions`` event naming
    its interval. The scheduler itself triggers 30_monitor on them, and the monitor writes
    model_performance and feature_drift for exactly the intervals the events named."""
    runs = asset_triggered_runs(stack, at_least=1)
    assert {r["state"] for r in runs} == {"success"}
    named = set().union(*(named_intervals(stack, r["dag_run_id"]) for r in runs))
    first = (first_logical_date(stack) - timedelta(minutes=10)).isoformat()
    assert first in named
    with psycopg.connect(cluster.dsn("warehouse")) as conn:
        computed = {
            table: {
                row[0].isoformat() for row in conn.execute(f"SELECT DISTINCT interval_start FROM {table}")
            }
            for table in ("model_performance", "feature_drift")
        }
    assert computed == {"model_performance": named, "feature_drift": named}
