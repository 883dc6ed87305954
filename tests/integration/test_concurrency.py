"""Runs that overlap, in processes of their own on the real warehouse: two intervals and a rescore
over both at once, and two runs of one interval at once (a manual run beside the scheduled one)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etlml.interval import Interval
from etlml.models import registry
from tests.dags.test_model_lifecycle import BASELINE_FORMULA, V2_FORMULA, V2_STATS

pytestmark = [pytest.mark.db]

PIPELINE = "10_etl_ml_pipeline"
A = Interval(datetime(2026, 11, 23, 9, 0, tzinfo=UTC), datetime(2026, 11, 23, 9, 10, tzinfo=UTC))
B = Interval(A.end, A.end + timedelta(minutes=10))
EVENTS = 60_000


def pipeline(run_id: str, start: datetime, end: datetime, events: int) -> str:
    """Every step of one run, as the DAG orders them: ``stored``, ``superseded by RUN`` (another run
    loaded the interval after this one scored it), or ``refused: ...`` (a step failed without retry)."""
    from airflow.sdk.exceptions import AirflowFailException

    from etlml.steps.extract import extract
    from etlml.steps.load_processed import load_processed
    from etlml.steps.predict import predict
    from etlml.steps.run import RunContext
    from etlml.steps.store_predictions import store_predictions
    from etlml.steps.transform import transform

    ctx = RunContext(PIPELINE, run_id, Interval(start, end))
    try:
        extracted = extract(ctx, simulated_events=events, shard_size=events // 2)
        processed = [transform(ctx, extracted.plan, shard) for shard in extracted.shards]
        loaded = load_processed(ctx, extracted.plan, processed)
        stored = [store_predictions(ctx, predict(ctx, extracted.plan, s, loaded.ref)) for s in processed]
    except AirflowFailException as exc:
        return f"refused: {exc}"
    superseded = {s.superseded_by for s in stored if s.superseded_by is not None}
    return f"superseded by {', '.join(sorted(superseded))}" if superseded else "stored"


def rescore_until(done: str, start: datetime, end: datetime) -> int:
    """Rescore the window with v2 again and again until the file ``done`` exists (the runs beside it
    have finished; at most five minutes), then once more."""
    from etlml.steps.rescore import rescore

    rounds, deadline = 0, time.monotonic() + 300
    while True:
        finished = Path(done).exists()
        rescore("20_rescore/concurrent", "v2", start, end, chunk_size=7_000)
        rounds += 1
        if finished or time.monotonic() > deadline:
            return rounds


def check(conn: psycopg.Connection[Any], *intervals: Interval) -> None:
    """No orphan, every prediction agrees with the stored features, every audit balances and
    matches its interval's rows."""
    orphans = conn.execute(
        "SELECT count(*) FROM predictions p WHERE NOT EXISTS "
        "(SELECT 1 FROM processed_data d WHERE d.event_id = p.event_id)"
    ).fetchone()
    assert orphans == (0,)
    for version, formula in (("baseline_v1", BASELINE_FORMULA), ("v2", V2_FORMULA)):
        row = conn.execute(
            f"SELECT count(*) FILTER (WHERE abs(p.y_hat - ({formula})) > 1e-9) "
            "FROM predictions p JOIN processed_data d USING (event_id) WHERE p.model_version = %s",
            (version,),
        ).fetchone()
        assert row == (0,), f"{version}: predictions that disagree with the stored features"
    for interval in intervals:
        audit = conn.execute(
            "SELECT extracted, loaded, rejected, deduplicated, "
            "(SELECT count(*) FROM processed_data WHERE interval_start = %(s)s) FROM run_audit "
            "WHERE dag_id = %(d)s AND interval_start = %(s)s",
            {"s": interval.start, "d": PIPELINE},
        ).fetchone()
        assert audit is not None
        extracted, loaded, rejected, deduplicated, rows = audit
        assert extracted == loaded + rejected + deduplicated == EVENTS
        assert loaded == rows
        scored = conn.execute(
            "SELECT count(*) FROM predictions p JOIN processed_data d USING (event_id) "
            "WHERE d.interval_start = %s AND p.model_version = 'baseline_v1'",
            (interval.start,),
        ).fetchone()
        assert scored == (EVENTS,)


@pytest.fixture
def wh(fresh_migrated: str) -> Any:
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        registry.register_linear(
            conn, "v2", coef={"f1": 0.5, "f2": 0.1, "f3": 0.4}, stats=V2_STATS, actor="t"
        )
        yield conn


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawned workers inherit this process's environment: the test's warehouse and storage root
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def test_two_intervals_and_a_rescore_over_both_at_once(wh: psycopg.Connection[Any], tmp_path: Path) -> None:
    done = tmp_path / "runs-finished"
    with _pool(3) as pool:
        rescoring = pool.submit(rescore_until, str(done), A.start, B.end)
        runs = [pool.submit(pipeline, f"manual__{i.key}", i.start, i.end, EVENTS) for i in (A, B)]
        assert [run.result(timeout=300) for run in runs] == ["stored", "stored"]
        done.touch()
        assert rescoring.result(timeout=300) >= 2  # a deadlock would have raised here
    check(wh, A, B)
    # the last rescore ran after both loads: v2 scored every event
    assert wh.execute("SELECT count(*) FROM predictions WHERE model_version = 'v2'").fetchone() == (
        2 * EVENTS,
    )


# what each row holds, without the columns saying which run wrote it and when
CONTENT = {
    "processed_data": "SELECT md5(string_agg((interval_start, event_id, ts_utc, f1, f2, f3, "
    "f1_z, f2_z, f3_z, f1_imputed, f2_imputed, f3_imputed, normalized_with, interval_end)::text, '|' "
    "ORDER BY interval_start, event_id)) FROM processed_data",
    "predictions": "SELECT md5(string_agg((interval_start, event_id, model_version, y_hat, ts_utc)::text, "
    "'|' ORDER BY interval_start, event_id, model_version)) FROM predictions",
}


def content(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return {table: str(conn.execute(q).fetchone()[0]) for table, q in CONTENT.items()}  # type: ignore[index]


def test_two_runs_of_one_interval_at_once_both_succeed(
    wh: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with _pool(2) as pool:
        futures: list[Future[str]] = [
            pool.submit(pipeline, run_id, A.start, A.end, EVENTS)
            for run_id in ("scheduled__2026-11-23T09:10:00+00:00", "manual__2026-11-23T09:12:00+00:00")
        ]
        outcomes = [f.result(timeout=300) for f in futures]
    # each run stored its predictions, or found them superseded by the other's later load: both green
    assert "stored" in outcomes, outcomes
    for outcome in outcomes:
        assert outcome == "stored" or outcome.startswith(f"superseded by {PIPELINE}/"), outcome
    check(wh, A)
    raced = content(str(wh.info.dsn))
    # the tables equal those of one clean run of the interval in a warehouse of its own
    from etlml.warehouse import schema
    from tests.conftest import scratch_database, url_for  # not at the top: spawned workers import this module

    with scratch_database("etlml_clean") as clean:
        with psycopg.connect(clean) as conn:
            schema.migrate(conn)
        monkeypatch.setenv(
            "AIRFLOW_CONN_WAREHOUSE", url_for(str(psycopg.conninfo.conninfo_to_dict(clean)["dbname"]))
        )
        with _pool(1) as pool:
            assert (
                pool.submit(pipeline, "scheduled__clean", A.start, A.end, EVENTS).result(timeout=300)
                == "stored"
            )
        assert content(clean) == raced
