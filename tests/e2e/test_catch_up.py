"""No interval is skipped: a pipeline whose scheduler comes back after an hour runs all six missed
intervals, oldest first; `etlml runs gaps` then finds none, and Airflow's own backfill of one of them
gives the same rows.

An hour of downtime is what the scheduler meets when the pipeline's first interval
(ETLML_START_DATE) lies an hour back: every interval since has ended without a run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts import localstack
from tests.e2e.conftest import AIRFLOW, Stack, _start_stack
from tests.e2e.pipeline_checks import INIT, PIPELINE

pytestmark = pytest.mark.e2e

START = localstack.current_interval_start() - timedelta(hours=1)
MISSED = [START + timedelta(minutes=10 * k) for k in range(6)]
DIGEST = (
    "SELECT md5(string_agg((d.event_id, d.f1, d.f2, d.f3, d.f1_z, d.f2_z, d.f3_z, p.y_hat)::text, '|' "
    "ORDER BY d.event_id)) FROM processed_data d JOIN predictions p USING (event_id) "
    "WHERE d.interval_start = %s"
)


@pytest.fixture(scope="module")
def catch_up_stack(warehouse_dsn: str, metadata_template: str) -> Iterator[Stack]:
    extra = {"ETLML_START_DATE": START.isoformat()}
    yield from _start_stack("catchup", [[AIRFLOW, "standalone"]], extra, template=metadata_template)


def _scheduled(stack: Stack) -> dict[datetime, dict[str, Any]]:
    return {
        datetime.fromisoformat(r["data_interval_start"]): r
        for r in stack.api.runs(PIPELINE)
        if r["run_type"] == "scheduled"
    }


def _wait_for_missed_runs(stack: Stack, timeout: float = 600) -> dict[datetime, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        localstack.check_all(stack.components)
        runs = _scheduled(stack)
        if all(runs.get(s, {}).get("state") in localstack.TERMINAL_STATES for s in MISSED):
            return runs
        time.sleep(3)
    states = {str(s): r["state"] for s, r in _scheduled(stack).items()}
    pytest.fail(f"the missed intervals did not all run in {timeout:.0f} s: {states}")


def test_every_missed_interval_runs_oldest_first_and_leaves_no_gap(catch_up_stack: Stack) -> None:
    api = catch_up_stack.api
    api.wait_for_dag(INIT)
    api.unpause(INIT)
    init_run = api.trigger(INIT)
    assert api.wait_for_run(INIT, init_run) == "success"
    api.wait_for_dag(PIPELINE)
    api.unpause(PIPELINE)
    runs = _wait_for_missed_runs(catch_up_stack)
    missed = [runs[s] for s in MISSED]
    assert [r["state"] for r in missed] == ["success"] * 6
    started = [datetime.fromisoformat(r["start_date"]) for r in missed]
    assert started == sorted(started), "the missed intervals did not run oldest first"
    assert START - timedelta(minutes=10) not in runs  # nothing before ETLML_START_DATE

    gaps = subprocess.run(
        [str(Path(sys.executable).with_name("etlml")), "runs", "gaps", "--json",
         "--from", (START - timedelta(minutes=20)).isoformat(),
         "--to", (START + timedelta(hours=1)).isoformat()],
        env=catch_up_stack.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert gaps.returncode == 0, gaps.stderr
    # every interval ran; the two before ETLML_START_DATE are not the pipeline's, so no gaps either
    assert json.loads(gaps.stdout) == []

    # Airflow's own backfill of an interval that ran gives the same rows
    again = MISSED[2]
    with psycopg.connect(catch_up_stack.dbs.warehouse_url) as conn:
        before = conn.execute(DIGEST, (again,)).fetchone()
    backfill = subprocess.run(
        [AIRFLOW, "backfill", "create", "--dag-id", PIPELINE, "--reprocess-behavior", "completed",
         "--from-date", again.isoformat(), "--to-date", again.isoformat()],
        env=catch_up_stack.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-2000:]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        backfilled = [r for r in api.runs(PIPELINE) if r["run_type"] == "backfill"]
        if backfilled and backfilled[0]["state"] in localstack.TERMINAL_STATES:
            break
        time.sleep(3)
    assert [r["state"] for r in backfilled] == ["success"]
    assert datetime.fromisoformat(backfilled[0]["data_interval_start"]) == again
    with psycopg.connect(catch_up_stack.dbs.warehouse_url) as conn:
        assert conn.execute(DIGEST, (again,)).fetchone() == before
        assert before is not None and before[0] is not None
