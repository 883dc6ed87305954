"""Faults done for real: a task's process SIGKILLed inside its COPY, and PostgreSQL stopped with
``-m immediate`` under a load (on a throwaway cluster of the test's own, never the shared server).
Each case ends with the interval run again; then processed_data, predictions and rejected_events
equal, row for row, a clean run of the same interval in another database, and no prediction lacks
its event. The interval is a landing partition with bad and duplicated records, so the quarantine
is part of what must survive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import ROOT, scratch_database, url_for
from tests.pgcluster import Cluster, throwaway_cluster

pytestmark = [pytest.mark.db]

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
RUN_ID = "scheduled__2026-11-20T06:10:00+00:00"
EVENTS = 250_000
# records of the landing partition the contract rejects: a non-number f1, and a second delivery of an id
INVALID, DUPLICATES = 500, 300
# what each row holds, without the columns saying when it was written
DIGESTS = {
    "processed_data": "SELECT md5(string_agg((event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, "
    "f1_imputed, f2_imputed, f3_imputed, normalized_with, interval_start, interval_end)::text, '|' "
    "ORDER BY event_id)) FROM processed_data",
    "predictions": "SELECT md5(string_agg((event_id, model_version, y_hat, ts_utc, written_by_run)::text, "
    "'|' ORDER BY event_id, model_version)) FROM predictions",
    "rejected_events": "SELECT md5(string_agg((interval_start, interval_end, source_file, row_number, "
    "reason, message, event_id, raw, written_by_run)::text, '|' ORDER BY source_file, row_number)) "
    "FROM rejected_events",
}


class Warehouse:
    """A migrated warehouse database, its storage root, and the run's phases as processes."""

    def __init__(self, dsn: str, url: str, work: Path, landing: Path) -> None:
        self.dsn, self.url, self.work = dsn, url, work
        self.state = work / "state.json"
        self.env = {
            **os.environ,
            "AIRFLOW_CONN_WAREHOUSE": url,
            "ETLML_STORAGE_ROOT": (work / "storage").as_uri(),
            "ETLML_SOURCE": "landing",
            "ETLML_LANDING_ROOT": str(landing),
        }
        from etlml.warehouse import schema

        with psycopg.connect(dsn) as conn:
            schema.migrate(conn)

    def start(self, phase: str) -> subprocess.Popen[str]:
        args = [sys.executable, "-m", "tests.faults.chain", phase, str(self.state), RUN_ID, START.isoformat()]
        return subprocess.Popen(
            [*args, str(EVENTS)], cwd=ROOT, env=self.env, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def run(self, *phases: str) -> None:
        for phase in phases:
            proc = self.start(phase)
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"{phase} failed:\n{err[-3000:]}"

    def digests(self) -> dict[str, str]:
        with psycopg.connect(self.dsn) as conn:
            found = {table: str(conn.execute(q).fetchone()[0]) for table, q in DIGESTS.items()}  # type: ignore[index]
            orphans = conn.execute(
                "SELECT count(*) FROM predictions p WHERE NOT EXISTS (SELECT 1 FROM processed_data d "
                "WHERE (d.interval_start, d.event_id) = (p.interval_start, p.event_id))"
            ).fetchone()
        assert orphans == (0,)
        return found

    def counts(self) -> dict[str, int]:
        with psycopg.connect(self.dsn) as conn:
            return {
                table: int(
                    conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[
                        0
                    ]
                )  # type: ignore[index]
                for table in DIGESTS
            }


def _warehouse(prefix: str, tmp_path: Path, landing: Path) -> Iterator[Warehouse]:
    with scratch_database(prefix) as dsn:
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        work = tmp_path / prefix
        work.mkdir()
        yield Warehouse(dsn, url_for(str(name)), work, landing)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interval's landing partition: the simulator's events as CSV, ``INVALID`` of them with an f1
    that is not a number, and ``DUPLICATES`` ids delivered again in a second file."""
    from etlml.ingest.landing import partition_key
    from etlml.ingest.simulator import SimulatedSource
    from etlml.interval import Interval

    interval = Interval(START, START + timedelta(minutes=10))
    root = tmp_path_factory.mktemp("landing")
    folder = root / partition_key(interval)
    folder.mkdir(parents=True)
    events = SimulatedSource(7, EVENTS - DUPLICATES).events(interval).reset_index()
    events["ts_utc"] = events["ts_utc"].map(lambda t: t.isoformat())
    events["f1"] = events["f1"].astype(object)
    events.loc[events.index[:: (EVENTS - DUPLICATES) // INVALID][:INVALID], "f1"] = "n/a"
    events.to_csv(folder / "a.csv", index=False, columns=["event_id", "ts_utc", "f1", "f2", "f3"])
    again = events[events["f1"] != "n/a"].iloc[1::2].head(DUPLICATES)  # valid: the second delivery wins
    again.to_csv(folder / "b.csv", index=False, columns=["event_id", "ts_utc", "f1", "f2", "f3"])
    return root


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, landing: Path) -> Iterator[dict[str, str]]:
    """The digests of a run of the interval that nothing disturbed."""
    for wh in _warehouse("etlml_faults_clean", tmp_path_factory.mktemp("clean"), landing):
        wh.run("extract", "load", "score")
        loaded = EVENTS - DUPLICATES - INVALID
        assert wh.counts() == {
            "processed_data": loaded,
            "predictions": loaded,
            "rejected_events": INVALID + DUPLICATES,
        }
        digests = wh.digests()
        assert all(d != "None" for d in digests.values()), digests
        yield digests


@pytest.fixture
def faulted(tmp_path: Path, landing: Path) -> Iterator[Warehouse]:
    yield from _warehouse("etlml_faults", tmp_path, landing)


def kill_inside_copy(wh: Warehouse, phase: str, table: str) -> int:
    """Start ``phase`` and SIGKILL its process group once PostgreSQL reports its COPY into ``table``
    under way; return the rows the COPY had taken by then (the proof that the kill landed inside)."""
    proc = wh.start(phase)
    copied = wait_for_copy(wh.dsn, table, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return copied


def wait_for_copy(dsn: str, table: str, proc: subprocess.Popen[str], timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT tuples_processed FROM pg_stat_progress_copy "
                "WHERE datname = current_database() AND relid = %s::regclass",
                (table,),
            ).fetchone()
            if row is not None and row[0] > 0:
                return int(row[0])
            assert proc.poll() is None, f"the task ended before its COPY into {table} was seen"
            time.sleep(0.01)
    pytest.fail(f"no COPY into {table} within {timeout:.0f} s")


def test_sigkill_inside_load_processed_copy_then_rerun(faulted: Warehouse, clean: dict[str, str]) -> None:
    faulted.run("extract")
    copied = kill_inside_copy(faulted, "load", "processed_data")
    assert 0 < copied < EVENTS
    with psycopg.connect(faulted.dsn) as conn:  # the transaction died with its process
        assert conn.execute("SELECT count(*) FROM processed_data").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM run_audit").fetchone() == (0,)
    faulted.run("extract", "load", "score")
    assert faulted.digests() == clean


def test_sigkill_inside_store_predictions_copy_then_rerun(faulted: Warehouse, clean: dict[str, str]) -> None:
    faulted.run("extract", "load")
    copied = kill_inside_copy(faulted, "score", "predictions")
    assert 0 < copied < EVENTS
    with psycopg.connect(faulted.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() == (0,)
    faulted.run("extract", "load", "score")
    assert faulted.digests() == clean


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL 15 cluster of this test's own on a free port."""
    with throwaway_cluster() as pg:
        yield pg


def test_postgres_restarted_during_load_processed_then_the_retry_completes(
    cluster: Cluster, tmp_path: Path, landing: Path, clean: dict[str, str]
) -> None:
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE warehouse")
    dsn = cluster.dsn("warehouse")
    wh = Warehouse(dsn, dsn, tmp_path, landing)
    wh.run("extract")
    load = wh.start("load")
    assert 0 < wait_for_copy(dsn, "processed_data", load) < EVENTS
    cluster.stop_immediate()
    _, err = load.communicate(timeout=120)
    # the attempt fails on the lost connection: an error Airflow retries (not a permanent one)
    assert load.returncode == 1
    assert "AirflowFailException" not in err
    assert "OperationalError" in err or "WarehouseUnavailableError" in err, err[-2000:]
    cluster.start()
    with psycopg.connect(dsn) as conn:  # crash recovery rolled the load back
        assert conn.execute("SELECT count(*) FROM processed_data").fetchone() == (0,)
    wh.run("load", "score")  # the task's retry, then the rest of the run
    assert wh.digests() == clean
