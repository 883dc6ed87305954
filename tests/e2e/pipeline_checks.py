"""What both end-to-end suites do through the REST API and check in the warehouse."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from tests.e2e.conftest import Stack

PIPELINE = "10_etl_ml_pipeline"
INIT = "00_init_schema"
BATCH = 300


def run_both_dags(stack: Stack, **conf: Any) -> dict[str, Any]:
    """Unpause and run 00_init_schema, then unpause and trigger the pipeline (``BATCH`` events and
    ``conf``); return that run."""
    api = stack.api
    api.wait_for_dag(INIT)
    api.unpause(INIT)
    init_run = api.trigger(INIT)
    assert api.wait_for_run(INIT, init_run) == "success", api.task_states(INIT, init_run)
    # unpaused only now: its first scheduled run would otherwise find the warehouse unmigrated
    api.wait_for_dag(PIPELINE)
    api.unpause(PIPELINE)
    run_id = api.trigger(
        PIPELINE, logical_date=first_logical_date(stack), conf={"simulated_events": BATCH, **conf}
    )
    state = api.wait_for_run(PIPELINE, run_id, timeout=420)
    assert state == "success", api.task_states(PIPELINE, run_id)
    run: dict[str, Any] = api._call("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}")
    return run


def first_logical_date(stack: Stack) -> datetime:
    """The stack's ETLML_START_DATE: a manual run with this logical date scores the interval that ends
    there. (Airflow runs no task of a run whose logical date is before the DAG's start date.)"""
    return datetime.fromisoformat(stack.env["ETLML_START_DATE"])


def check_rows(stack: Stack, run: dict[str, Any], events: int = BATCH) -> None:
    """Every event of the run's interval (``events``) is stored and scored with the formula, by this run."""
    start = datetime.fromisoformat(run["data_interval_start"])
    end = datetime.fromisoformat(run["data_interval_end"])
    with psycopg.connect(stack.dbs.warehouse_url) as conn:
        processed = conn.execute(
            "SELECT count(*), count(DISTINCT event_id), bool_and(ts_utc >= %(s)s AND ts_utc < %(e)s) "
            "FROM processed_data WHERE interval_start = %(s)s AND interval_end = %(e)s",
            {"s": start, "e": end},
        ).fetchone()
        assert processed == (events, events, True), processed
        scored = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE p.y_hat = 0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z), "
            "min(p.written_by_run), max(p.written_by_run) "
            "FROM predictions p JOIN processed_data d USING (event_id) "
            "WHERE d.interval_start = %(s)s AND p.model_version = 'baseline_v1'",
            {"s": start},
        ).fetchone()
        ref = f"{PIPELINE}/{run['dag_run_id']}"
        assert scored == (events, events, ref, ref)
