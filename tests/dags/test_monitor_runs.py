"""30_monitor and what feeds it: the pipeline's asset events with their metadata, the monitor's
asset-or-time schedule, the pipeline's freshness deadline, runs with dag.test() on the real
warehouse, and the deadline's callback posting to a webhook as the triggerer runs it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from etlml.interval import Interval
from etlml.steps import monitor as monitor_step
from tests.dags.test_dag_runs import run
from tests.monitoring_data import add_labels, clear, webhook

pytestmark = [pytest.mark.airflow, pytest.mark.db]

PIPELINE, MONITOR = "10_etl_ml_pipeline", "30_monitor"
# dag.test(logical_date=10:10) of the pipeline runs the interval [10:00, 10:10)
LOGICAL = datetime(2026, 11, 24, 10, 10, tzinfo=UTC)
INTERVAL = Interval(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), LOGICAL)


def asset_events(uri: str, since: datetime) -> list[dict[str, Any]]:
    """The extra of every event of asset ``uri`` recorded in Airflow's metadata DB since ``since``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == uri, AssetEvent.timestamp >= since)
            .order_by(AssetEvent.timestamp)
        ).all()
    return [dict(extra) for (extra,) in rows]


def test_monitor_is_scheduled_on_predictions_or_labels_or_every_ten_minutes(dags: dict[str, Any]) -> None:
    dag = dags[MONITOR]
    timetable = dag.timetable
    assert type(timetable).__name__ == "AssetOrTimeSchedule"
    condition = timetable.asset_condition  # predictions | labels: either asset's event triggers a run
    assert type(condition).__name__ == "AssetAny"
    assert sorted((a.name, a.uri) for a in condition.objects) == [
        ("labels", "x-etlml://warehouse/public/labels"),
        ("predictions", "x-etlml://warehouse/public/predictions"),
    ]
    assert (timetable.timetable.expression, str(timetable.timetable.timezone)) == ("*/10 * * * *", "UTC")
    assert (dag.max_active_runs, dag.catchup) == (1, False)


def test_pipeline_tasks_declare_their_assets(dags: dict[str, Any]) -> None:
    dag = dags[PIPELINE]
    assert [a.name for a in dag.get_task("load_processed").outlets] == ["processed_data"]
    assert [a.name for a in dag.get_task("store_predictions").outlets] == ["predictions"]
    assert [a.name for a in dags["15_ingest_labels"].get_task("ingest_labels").outlets] == ["labels"]


def test_pipeline_carries_the_freshness_deadline(parsed_dags: dict[str, Any]) -> None:
    deadline = parsed_dags[PIPELINE].deadline
    alerts = deadline if isinstance(deadline, list) else [deadline]
    (alert,) = alerts
    # logical date = the interval's start: + 10 minutes of interval + 15 minutes to finish
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    assert alert.interval == timedelta(minutes=25)
    assert alert.callback.path == "etlml.monitoring.alerts.AlertNotifier"
    assert alert.callback.kwargs["kind"] == "deadline"


def test_a_missed_deadline_posts_through_the_callback_the_triggerer_runs(
    monkeypatch: pytest.MonkeyPatch, parsed_dags: dict[str, Any]
) -> None:
    """What the triggerer does with the deadline's AsyncCallback when the deadline passes: a
    CallbackTrigger imports the notifier, builds it with the kwargs and the run's context, awaits it."""
    from airflow.triggers.callback import CallbackTrigger

    callback = parsed_dags[PIPELINE].deadline
    callback = (callback[0] if isinstance(callback, list) else callback).callback
    # the scheduler's context: the run as the REST API gives it (its id under dag_run_id)
    context = {
        "dag_run": {
            "dag_id": PIPELINE,
            "dag_run_id": "scheduled__2026-11-24T10:00:00+00:00",
            "logical_date": "2026-11-24T10:00:00Z",
            "state": "running",
            "data_interval_start": "2026-11-24T10:00:00Z",
            "data_interval_end": "2026-11-24T10:10:00Z",
        },
        "deadline": {"id": "d1", "deadline_time": "2026-11-24T10:25:00Z"},
    }
    trigger = CallbackTrigger(callback.path, {**callback.kwargs, "context": context})

    async def events() -> list[Any]:
        return [event async for event in trigger.run()]

    with webhook() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_ETLML_ALERTS", f"{hook.url}/deadline")
        outcome = asyncio.run(events())
    assert outcome[-1].payload["state"] == "success", outcome[-1].payload
    (post,) = hook.posts
    assert post["path"] == "/deadline"
    assert post["json"]["kind"] == "deadline"
    assert "did not finish within 15 minutes" in post["json"]["summary"]
    assert post["json"]["details"]["data_interval_end"] == "2026-11-24T10:10:00Z"
    assert post["json"]["details"]["deadline_time"] == "2026-11-24T10:25:00Z"
    assert post["json"]["details"]["run_id"] == "scheduled__2026-11-24T10:00:00+00:00"


def test_pipeline_events_carry_metadata_and_the_monitor_computes_what_they_name(
    dags: dict[str, Any], conn: psycopg.Connection[Any]
) -> None:
    clear(conn)
    since = datetime.now(UTC)
    dag_run = run(dags[PIPELINE], LOGICAL)
    ref = f"{PIPELINE}/{dag_run.run_id}"
    (processed,) = asset_events("x-etlml://warehouse/public/processed_data", since)
    assert processed == {
        "interval_start": INTERVAL.start.isoformat(),
        "interval_end": INTERVAL.end.isoformat(),
        "rows": 200,
        "inserted": 200,
        "updated": 0,
        "rejected": 0,
        "model_versions": ["baseline_v1"],
        "run": ref,
    }
    (predicted,) = asset_events("x-etlml://warehouse/public/predictions", since)
    assert predicted["rows"] == 200 and predicted["by_version"] == {"baseline_v1": 200}
    assert (predicted["interval_start"], predicted["interval_end"]) == (
        INTERVAL.start.isoformat(),
        INTERVAL.end.isoformat(),
    )

    # the asset-triggered path: what the events name is computed, nothing else
    result = monitor_step.monitor(monitor_step.intervals_of([predicted]))
    assert result.intervals == (INTERVAL.key,) and result.reason == "named by asset events"
    row = conn.execute("SELECT n_predictions, n_labeled, mae FROM model_performance").fetchone()
    assert row == (200, 0, None)
    drift = conn.execute("SELECT feature, n, status FROM feature_drift ORDER BY feature").fetchall()
    assert [(f, n) for f, n, _ in drift] == [("f1", 200), ("f2", 200), ("f3", 200), ("score", 200)]
    conn.rollback()
    clear(conn)


def test_monitor_dag_sweeps_the_intervals_whose_labels_arrived(
    dags: dict[str, Any], conn: psycopg.Connection[Any]
) -> None:
    clear(conn)
    run(dags[PIPELINE], LOGICAL)
    events = conn.execute(
        "SELECT p.event_id, p.y_hat FROM predictions p ORDER BY p.event_id LIMIT 120"
    ).fetchall()
    y_true = [y + 0.25 * (-1) ** i for i, (_, y) in enumerate(events)]
    import pandas as pd

    with conn.cursor() as cur:
        add_labels(cur, INTERVAL, pd.DataFrame({"event_id": [e for e, _ in events], "y_true": y_true}))
    conn.commit()
    dag_run = run(dags[MONITOR], LOGICAL + timedelta(minutes=30))
    assert dag_run.state == "success"
    row = conn.execute("SELECT n_predictions, n_labeled, mae, bias FROM model_performance").fetchone()
    assert row is not None
    assert row[:2] == (200, 120)
    assert row[2] == pytest.approx(0.25)
    assert row[3] == pytest.approx(float(np.mean([-0.25 * (-1) ** i for i in range(120)])), abs=1e-12)
    # nothing changed since: the next sweep computes nothing
    assert monitor_step.monitor([]).intervals == ()
    conn.rollback()
    clear(conn)


def test_the_simulators_f3_shift_drives_f3_to_alert(
    dags: dict[str, Any], conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ETLML_SIMULATOR_SHIFT=f3=+20, the demo's drift: the pipeline's events of the interval carry it,
    and the monitor run its asset event names finds f3 (and the score it moves) in alert, the other
    inputs not."""
    clear(conn)
    monkeypatch.setenv("ETLML_SIMULATOR_SHIFT", "f3=+20")
    since = datetime.now(UTC)
    run(dags[PIPELINE], LOGICAL)
    (predicted,) = asset_events("x-etlml://warehouse/public/predictions", since)
    result = monitor_step.monitor(monitor_step.intervals_of([predicted]))
    assert result.intervals == (INTERVAL.key,) and result.alerts >= 1
    drift = dict(
        conn.execute(
            "SELECT feature, status FROM feature_drift WHERE model_version = 'baseline_v1'"
        ).fetchall()
    )
    assert drift == {"f1": "ok", "f2": "ok", "f3": "alert", "score": "alert"}
    conn.rollback()
    clear(conn)
