"""`airflow dags test` as a user runs it: the real CLI in a subprocess for every DAG of the project, its
exit status and the rows it stored. A successful run exits 0 (the pipeline's deadline included, see
``etlml.airflow_compat``), a failed one exits non-zero.

Dates come from the clock: the pipeline's start date is set a few hours back and each run's logical
date after it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT, WORK_DIR, scratch_database, url_for

pytestmark = [pytest.mark.airflow, pytest.mark.db]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
TEN = timedelta(minutes=10)
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
# the pipeline's logical date: its interval [LOGICAL - 10 min, LOGICAL) is after the start date
LOGICAL = NOW - timedelta(minutes=NOW.minute % 10) - timedelta(hours=2)
START_DATE = LOGICAL - timedelta(hours=4)
# the label run three intervals later gives the labels of the pipeline's interval (simulator delay 3)
LABELS_LOGICAL = LOGICAL + 3 * TEN


@dataclass
class Result:
    command: list[str]
    returncode: int
    output: str
    rows: dict[str, Any] = field(default_factory=dict)


def training_window() -> tuple[str, str]:
    from tests.labelled_events import interval

    return interval(0).start.isoformat(), interval(4).start.isoformat()


# Every DAG of the project, in the order a user would first try them, with the conf each needs.
def plan() -> list[tuple[str, datetime | None, dict[str, Any]]]:
    first, last = training_window()
    return [
        ("00_init_schema", LOGICAL, {}),
        ("10_etl_ml_pipeline", LOGICAL, {}),
        ("15_ingest_labels", LABELS_LOGICAL, {}),
        ("30_monitor", LABELS_LOGICAL, {}),
        ("40_train_challenger", None, {"name": "cli_v2", "estimator": "ridge", "from": first, "to": last}),
        # the new version scores the pipeline's interval
        (
            "20_rescore",
            None,
            {"model_version": "cli_v2", "from": (LOGICAL - TEN).isoformat(), "to": LOGICAL.isoformat()},
        ),
        ("90_housekeeping", LABELS_LOGICAL, {}),
    ]


# What each DAG's run leaves in the warehouse, read after it.
CHECKS = {
    "00_init_schema": "SELECT count(*) FROM schema_migrations",
    "10_etl_ml_pipeline": "SELECT (SELECT count(*) FROM processed_data WHERE interval_start = %(start)s), "
    "(SELECT count(*) FROM predictions p JOIN processed_data d USING (interval_start, event_id) "
    "WHERE d.interval_start = %(start)s)",
    "15_ingest_labels": "SELECT count(*) FROM labels WHERE interval_start = %(start)s",
    "30_monitor": "SELECT count(*) FROM feature_drift WHERE interval_start = %(start)s",
    "20_rescore": "SELECT count(*) FROM predictions WHERE model_version = 'cli_v2' "
    "AND interval_start = %(start)s AND written_by_run LIKE '20_rescore/%%'",
    "40_train_challenger": "SELECT model_version FROM model_aliases WHERE alias = 'challenger'",
    "90_housekeeping": "SELECT count(*) FROM processed_data WHERE interval_start = %(start)s",
}


def cli_env(warehouse: str, storage: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "AIRFLOW_CONN_WAREHOUSE": url_for(warehouse),
        "ETLML_STORAGE_ROOT": storage.as_uri(),
        "ETLML_START_DATE": START_DATE.isoformat(),
    }
    for name in (
        "ETLML_SOURCE",
        "ETLML_LABEL_SOURCE",
        "ETLML_SIMULATOR_LABEL_DELAY",
        "ETLML_SIMULATOR_SHIFT",
    ):
        env.pop(name, None)
    return env


def dags_test(dag_id: str, logical: datetime | None, conf: dict[str, Any], env: dict[str, str]) -> Result:
    import json

    command = [AIRFLOW, "dags", "test", dag_id]
    if logical is not None:
        command.append(logical.isoformat())
    if conf:
        command += ["--conf", json.dumps(conf)]
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    return Result(command, done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def cli_runs(airflow_db: None) -> Iterator[tuple[dict[str, Result], str]]:
    """Every DAG run once by ``airflow dags test`` against one new warehouse, in :func:`plan`'s order."""
    with scratch_database("etlml_cli") as dsn:
        name = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
        env = cli_env(name, WORK_DIR / f"cli-storage-{name}")
        results: dict[str, Result] = {}
        for dag_id, logical, conf in plan():
            if dag_id == "40_train_challenger":  # labelled events to train on
                from tests.labelled_events import load_intervals

                with psycopg.connect(dsn, autocommit=True) as conn:
                    load_intervals(conn, 0, 4)
            result = dags_test(dag_id, logical, conf, env)
            with psycopg.connect(dsn) as conn:
                row = conn.execute(CHECKS[dag_id], {"start": LOGICAL - TEN}).fetchone()  # type: ignore[arg-type]
            result.rows = {"row": row}
            results[dag_id] = result
        yield results, dsn


def test_the_plan_covers_every_dag_of_the_project(parsed_dags: dict[str, Any]) -> None:
    assert sorted(dag_id for dag_id, _, _ in plan()) == sorted(parsed_dags)
    assert sorted(CHECKS) == sorted(parsed_dags)


@pytest.mark.parametrize("dag_id", [dag_id for dag_id, _, _ in plan()])
def test_airflow_dags_test_exits_0_after_a_successful_run(
    cli_runs: tuple[dict[str, Result], str], dag_id: str
) -> None:
    result = cli_runs[0][dag_id]
    assert result.returncode == 0, (
        f"{' '.join(result.command[1:])} exited {result.returncode}:\n" + (result.output[-4000:])
    )
    assert "Marking run" in result.output and "successful" in result.output


def test_what_each_cli_run_stored(cli_runs: tuple[dict[str, Result], str]) -> None:
    from etlml.warehouse import schema

    rows = {dag_id: result.rows["row"] for dag_id, result in cli_runs[0].items()}
    assert rows == {
        "00_init_schema": (len(schema.available()),),
        "10_etl_ml_pipeline": (200, 200),
        "15_ingest_labels": (200,),
        # f1, f2, f3 and the score, of the champion
        "30_monitor": (4,),
        "40_train_challenger": ("cli_v2",),
        "20_rescore": (200,),
        # inside the retention: nothing removed
        "90_housekeeping": (200,),
    }


def test_the_pipeline_run_by_the_cli_keeps_its_deadline(cli_runs: tuple[dict[str, Result], str]) -> None:
    """The exit status is not bought by dropping the deadline: the DAG the CLI ran and stored in the
    metadata database carries it."""
    from airflow.models.deadline_alert import DeadlineAlert
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        names = session.scalars(
            select(DeadlineAlert.name)
            .join(SerializedDagModel, SerializedDagModel.id == DeadlineAlert.serialized_dag_id)
            .where(SerializedDagModel.dag_id == "10_etl_ml_pipeline")
        ).all()
    assert set(names) == {"finished 15 minutes after the interval"}
    assert "Traceback" not in cli_runs[0]["10_etl_ml_pipeline"].output


def test_airflow_dags_test_exits_non_zero_after_a_failed_run(airflow_db: None, tmp_path: Path) -> None:
    """A warehouse without its migrations: extract fails at once (a permanent error, no retries)."""
    with scratch_database("etlml_cli_failed") as dsn:
        name = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
        result = dags_test("10_etl_ml_pipeline", LOGICAL + TEN, {}, cli_env(name, tmp_path))
    assert result.returncode != 0
    assert "DagRun failed" in result.output
    assert "has no attribute 'hex'" not in result.output
