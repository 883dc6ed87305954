"""Estimated performance before the labels, on the simulator: baseline_v1's error estimator, fitted on
labelled intervals, sees ETLML_SIMULATOR_SHIFT=f3=+20 raise its error in the first shifted interval,
three intervals before that interval's labels arrive; and over 36 intervals, shifted and not, the
estimate lies within 15 % of the realized MAE.

The pipeline, label and monitor runs of the crossing are dag.test() runs on the real warehouse; the
reference and the 36 intervals are stored the way the pipeline and the label ingest store them, by
library calls, to keep the test short. Dates come from the clock.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from etlml import cli
from etlml.ingest.simulator import SimulatedLabels, SimulatedSource
from etlml.interval import Interval
from etlml.models.scoring import LinearModel
from etlml.monitoring import metrics
from etlml.monitoring.baseline_profile import BASELINE_COEF, BASELINE_INTERCEPT, BASELINE_STATS
from etlml.settings import DEFAULT_SEED, Monitoring
from etlml.steps import monitor as monitor_step
from tests.dags.test_dag_runs import run
from tests.dags.test_monitor_runs import asset_events
from tests.monitoring_data import clear, store, webhook

pytestmark = [pytest.mark.airflow, pytest.mark.db]
log = logging.getLogger(__name__)

PIPELINE, LABELS, MONITOR = "10_etl_ml_pipeline", "15_ingest_labels", "30_monitor"
TEN = timedelta(minutes=10)
EVENTS = 2000
SHIFT = {"f3": 20.0}
REFERENCE_INTERVALS = 10
NOW = datetime.now(UTC)
# two days back, on a 10-minute boundary: clear of the intervals other tests run
BASE = NOW.replace(minute=NOW.minute - NOW.minute % 10, second=0, microsecond=0) - timedelta(days=2)


def nth(k: int) -> Interval:
    return Interval(BASE + k * TEN, BASE + (k + 1) * TEN)


def with_truth(interval: Interval, shift: dict[str, float] | None = None) -> pd.DataFrame:
    """The simulator's events of ``interval`` (seed and count as the pipeline's), baseline_v1's
    scores and the ground truth the simulator gives three intervals later."""
    source = SimulatedSource(DEFAULT_SEED, EVENTS, shift)
    events = source.events(interval)
    truth = SimulatedLabels(source, 3).labels(interval.shifted(3 * TEN))
    assert truth["event_id"].tolist() == events["event_id"].tolist()
    model = LinearModel("baseline_v1", BASELINE_COEF, BASELINE_INTERCEPT, BASELINE_STATS)
    return events.assign(y_hat=model.predict(events, use_stored_z=False), y_true=truth["y_true"].to_numpy())


def fit_baseline_estimator(conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]) -> float:
    """Reference intervals, labelled, and `etlml models fit-estimator baseline_v1` on them; the
    reference MAE it recorded."""
    for k in range(-REFERENCE_INTERVALS, 0):
        store(conn, nth(k), with_truth(nth(k)))
    window = ["--from", nth(-REFERENCE_INTERVALS).start.isoformat(), "--to", nth(0).start.isoformat()]
    capsys.readouterr()
    assert cli.main(["models", "fit-estimator", "baseline_v1", *window, "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["n"] == REFERENCE_INTERVALS * EVENTS and fitted["fitted_on"] == "labelled events"
    return float(fitted["reference_mae"])


def test_the_estimate_crosses_its_threshold_in_the_first_shifted_interval_and_tracks_the_truth(
    dags: dict[str, Any],
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clear(conn)
    reference_mae = fit_baseline_estimator(conn, capsys)
    threshold = Monitoring().estimated_mae_alert_ratio * reference_mae

    # 36 labelled intervals, the last 18 shifted: the estimate against the realized MAE
    shifted_from = 18
    ratios = []
    for k in range(1, 37):
        interval = nth(100 + k)
        store(conn, interval, with_truth(interval, SHIFT if k > shifted_from else None))
        report = metrics.compute_interval(conn, interval, Monitoring())
        (row,), (estimate,) = report.performance, report.estimates
        assert row.n_labeled == EVENTS and row.mae is not None
        ratios.append(estimate.mae / row.mae)
        assert estimate.alert == (k > shifted_from), (k, estimate, row.mae)
    within = sum(abs(r - 1) <= 0.15 for r in ratios)
    log.info(
        "estimate within 15%% of the realized MAE in %d of 36 intervals: %s", within, np.round(ratios, 3)
    )
    assert within >= 0.9 * 36

    # the crossing, under dag.test(): interval 0 as usual, interval 1 shifted; labels come 3 intervals late
    with webhook() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_ETLML_ALERTS", f"{hook.url}/hooks/etlml")
        since = datetime.now(UTC)
        for k, shift in ((0, None), (1, "f3=+20")):
            if shift:
                monkeypatch.setenv("ETLML_SIMULATOR_SHIFT", shift)
            run(dags[PIPELINE], nth(k).end, simulated_events=EVENTS)
        predicted = asset_events("x-etlml://warehouse/public/predictions", since)
        assert [p["interval_start"] for p in predicted] == [
            nth(0).start.isoformat(),
            nth(1).start.isoformat(),
        ]
        result = monitor_step.monitor(monitor_step.intervals_of(predicted))
        assert result.intervals == (nth(0).key, nth(1).key)
        rows = conn.execute(
            "SELECT interval_start, n_labeled, mae, estimated_mae, estimated_mae_low, estimated_mae_high, "
            "estimate_threshold, estimate_alert FROM model_performance WHERE interval_start IN (%s, %s) "
            "ORDER BY interval_start",
            (nth(0).start, nth(1).start),
        ).fetchall()
        conn.rollback()
        (before, crossing) = rows
        assert before[1:3] == (0, None) and before[7] is False and before[3] < threshold
        assert crossing[1:3] == (0, None) and crossing[7] is True and crossing[3] > threshold
        assert crossing[4] <= crossing[3] <= crossing[5] and crossing[6] == pytest.approx(threshold)
        kinds = sorted(p["json"]["kind"] for p in hook.posts)
        assert kinds == ["drift", "estimated_performance"]  # f3 drifts too
        (post,) = (p for p in hook.posts if p["json"]["kind"] == "estimated_performance")
        assert "estimated (before labels)" in post["json"]["summary"]
        assert post["json"]["details"]["new_estimate_alerts"][0]["model_version"] == "baseline_v1"

        # three intervals later the labels of interval 1 arrive: the realized MAE confirms it
        run(dags[LABELS], nth(4).end, simulated_events=EVENTS)
        run(dags[MONITOR], nth(4).end + TEN)
    realized = conn.execute(
        "SELECT n_labeled, mae, estimated_mae FROM model_performance WHERE interval_start = %s",
        (nth(1).start,),
    ).fetchone()
    conn.rollback()
    assert realized is not None and realized[0] == EVENTS and realized[1] > threshold
    log.info("interval 1: estimated MAE %.4f before its labels, realized %.4f", crossing[3], realized[1])
    # the recompute with labels sends neither alert a second time
    assert len(hook.posts) == 2
    clear(conn)
