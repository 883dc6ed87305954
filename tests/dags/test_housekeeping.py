"""90_housekeeping under dag.test(): old run folders of finished runs go, with their size logged; the
folders of unfinished runs and of runs younger than the retention stay."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.dags.test_dag_runs import PIPELINE, PIPELINE_PARAMS

pytestmark = [pytest.mark.airflow, pytest.mark.db]

DAYS = 86_400


def pipeline_run(dags: dict[str, Any], logical: datetime) -> Any:
    dag_run = dags[PIPELINE].test(logical_date=logical, run_conf=dict(PIPELINE_PARAMS))
    assert dag_run.state == "success"
    return dag_run


def folder_of(root: Path, run_id: str) -> Path:
    [marker] = [m for m in root.rglob("_run.json") if f'"{run_id}"' in m.read_text()]
    return marker.parent


def age(folder: Path, days: float) -> None:
    """Make every file in ``folder`` look last written ``days`` ago."""
    then = time.time() - days * DAYS
    for path in folder.rglob("*"):
        os.utime(path, (then, then), follow_symlinks=False)


def set_state(run_id: str, state: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.run_id == run_id).values(state=state))


def test_housekeeping_deletes_only_old_folders_of_finished_runs(
    dags: dict[str, Any],
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "storage"
    monkeypatch.setenv("ETLML_STORAGE_ROOT", root.as_uri())
    base = datetime(2026, 11, 21, 12, 10, tzinfo=UTC)
    done, running, failed, young = (pipeline_run(dags, base + timedelta(minutes=10 * k)) for k in range(4))
    for run, days in ((done, 8), (running, 30), (failed, 2), (young, 1)):
        age(folder_of(root, run.run_id), days)
    set_state(running.run_id, "running")
    set_state(failed.run_id, "failed")
    # a folder whose run Airflow no longer knows, and one from before folders per run (no marker)
    gone = root / PIPELINE / "20261101T000000Z_20261101T001000Z" / "manual__gone-00000000"
    gone.mkdir(parents=True)
    (gone / "_run.json").write_text('{"dag_id": "10_etl_ml_pipeline", "run_id": "manual__gone"}')
    (gone / ".events-001-of-001.parquet.0123.partial").write_bytes(b"left by a killed writer")
    flat = root / PIPELINE / "20261101T001000Z_20261101T002000Z"
    flat.mkdir(parents=True)
    (flat / "events.parquet").write_bytes(b"x" * 1000)
    artifact = root / "+models" / "sk1" / "model.skops"  # where the registry keeps sklearn artifacts
    earlier = root / "models" / "sk0" / "model.skops"  # and where earlier releases kept them
    for path in (artifact, earlier):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"a registered model, never swept")
        age(path.parent, 90)
    age(gone, 9)
    age(flat, 9)
    expected_bytes = sum(
        p.stat().st_size for d in (folder_of(root, done.run_id), gone, flat) for p in d.rglob("*")
    )

    with caplog.at_level(logging.INFO, logger="etlml.steps.housekeeping"):
        swept = dags["90_housekeeping"].test(logical_date=datetime(2026, 11, 26, 3, 30, tzinfo=UTC))
    assert swept.state == "success"
    remaining = {p.parent.name for p in root.rglob("_run.json")}
    assert {name.rsplit("-", 1)[0] for name in remaining} == {
        run.run_id.replace(":", "_").replace("+", "_") for run in (running, failed, young)
    }
    assert not gone.exists() and not flat.exists()
    assert artifact.read_bytes() == earlier.read_bytes() == b"a registered model, never swept"
    summary = [r.getMessage() for r in caplog.records if "storage sweep" in r.getMessage()]
    assert summary == [
        f"storage sweep with a retention of 7 days, 0:00:00: deleted 3 run folders ({expected_bytes} bytes), "
        "kept 1 of unfinished runs and 2 younger than the retention"
    ]
    deleted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("deleted ")]
    assert len(deleted) == 3 and any("no longer known to Airflow" in line for line in deleted)
