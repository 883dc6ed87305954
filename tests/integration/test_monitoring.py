"""Monitoring on the real PostgreSQL: realized accuracy and PSI computed in SQL against numpy and
etlml.features.profile, drift alerts, idempotent recomputes, the label-change sweep, the webhook."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from etlml.features import profile
from etlml.interval import Interval
from etlml.models import registry
from etlml.monitoring import baseline_profile, metrics
from etlml.monitoring.alerts import AlertError
from etlml.settings import Monitoring
from etlml.steps import monitor as monitor_step
from tests.monitoring_data import INTERVAL, START, add_labels, clear, simulated, store, webhook

pytestmark = pytest.mark.db

THRESHOLDS = Monitoring()
TEN = timedelta(minutes=10)


@pytest.fixture
def db(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    clear(conn)
    yield conn
    conn.rollback()
    clear(conn)


def stored_profile(conn: psycopg.Connection[Any], version: str = "baseline_v1") -> dict[str, Any]:
    row = conn.execute(
        "SELECT reference_profile FROM model_versions WHERE model_version = %s", (version,)
    ).fetchone()
    assert row is not None
    return dict(row[0])


def table(conn: psycopg.Connection[Any], name: str) -> list[tuple[Any, ...]]:
    columns = {
        "model_performance": "interval_start, model_version, n_predictions, n_labeled, mae, rmse, bias",
        "feature_drift": "interval_start, model_version, feature, n, psi, missing_share, status",
    }[name]
    rows = conn.execute(f"SELECT {columns} FROM {name} ORDER BY 1, 2, 3").fetchall()
    conn.rollback()  # no transaction left open: each computation commits on its own, as in a task
    return rows


def test_baseline_v1_profile_is_what_the_documented_function_fits(db: psycopg.Connection[Any]) -> None:
    assert stored_profile(db) == baseline_profile.baseline_profile()
    params, stats = db.execute(
        "SELECT params, feature_stats FROM model_versions WHERE model_version = 'baseline_v1'"
    ).fetchone()  # type: ignore[misc]
    # the function scores with the numbers migration 0002 registered
    assert params == {
        "coef": baseline_profile.BASELINE_COEF,
        "intercept": baseline_profile.BASELINE_INTERCEPT,
    }
    assert stats == {f: {"mean": s.mean, "std": s.std} for f, s in baseline_profile.BASELINE_STATS.items()}
    profile.check_profile(stored_profile(db))


def test_accuracy_and_psi_in_sql_equal_numpy_and_the_profile_module(db: psycopg.Connection[Any]) -> None:
    events = simulated(INTERVAL, 5000, seed=11)
    labeled = np.random.default_rng(3).random(len(events)) < 0.6
    store(db, INTERVAL, events, labeled=labeled)
    report = metrics.compute_interval(db, INTERVAL, THRESHOLDS)

    error = (events["y_hat"] - events["y_true"]).to_numpy()[labeled]
    (perf,) = report.performance
    assert (perf.model_version, perf.n_predictions, perf.n_labeled) == ("baseline_v1", 5000, labeled.sum())
    assert perf.mae == pytest.approx(np.abs(error).mean(), rel=1e-12)
    assert perf.rmse == pytest.approx(math.sqrt((error**2).mean()), rel=1e-12)
    assert perf.bias == pytest.approx(error.mean(), rel=1e-12)

    reference = stored_profile(db)
    values = {f: events[f].to_numpy(dtype=float) for f in ("f1", "f2", "f3")} | {
        "score": events["y_hat"].to_numpy()
    }
    drift = {d.feature: d for d in report.drift}
    assert sorted(drift) == ["f1", "f2", "f3", "score"]
    for feature, column in values.items():
        ref = reference[feature]
        expected_psi = profile.psi(ref["expected"], profile.shares(ref["edges"], column))
        assert drift[feature].psi == pytest.approx(expected_psi, rel=1e-9, abs=1e-12), feature
        assert drift[feature].missing_share == pytest.approx(np.isnan(column).mean())
        assert drift[feature].n == 5000
    # the simulator's own population does not drift from baseline_v1's profile
    assert {d.status for d in report.drift} == {"ok"}
    assert 0.01 < drift["f2"].missing_share < 0.1
    assert table(db, "model_performance") == [
        (START, "baseline_v1", 5000, labeled.sum(), perf.mae, perf.rmse, perf.bias)
    ]


def test_psi_in_sql_counts_values_on_an_edge_in_the_bin_it_opens(db: psycopg.Connection[Any]) -> None:
    events = simulated(INTERVAL, 400, seed=5)
    edges = stored_profile(db)["f1"]["edges"]
    events.loc[:99, "f1"] = edges[3]  # a quarter of the rows exactly on an edge
    store(db, INTERVAL, events)
    drift = {d.feature: d for d in metrics.compute_interval(db, INTERVAL, THRESHOLDS).drift}
    ref = stored_profile(db)["f1"]
    assert drift["f1"].psi == pytest.approx(
        profile.psi(ref["expected"], profile.shares(edges, events["f1"].to_numpy(dtype=float))), rel=1e-9
    )
    assert drift["f1"].status == "alert"


def test_a_shifted_f3_drives_its_psi_to_alert_and_notifies_once(db: psycopg.Connection[Any]) -> None:
    store(db, INTERVAL, simulated(INTERVAL, 2000, shift={"f3": 20.0}))
    sent: list[metrics.IntervalReport] = []
    report = metrics.compute_interval(db, INTERVAL, THRESHOLDS, sent.append)
    status = {d.feature: d.status for d in report.drift}
    assert status == {"f1": "ok", "f2": "ok", "f3": "alert", "score": "alert"}
    assert {d.feature for d in sent[0].new_alerts} == {"f3", "score"}
    psi_f3 = next(d.psi for d in report.drift if d.feature == "f3")
    assert psi_f3 is not None and psi_f3 > 1.0
    # the same outcome again: the rows are rewritten, nobody is told twice
    metrics.compute_interval(db, INTERVAL, THRESHOLDS, sent.append)
    assert len(sent) == 1


def test_warn_and_alert_thresholds_come_from_the_settings(db: psycopg.Connection[Any]) -> None:
    store(db, INTERVAL, simulated(INTERVAL, 2000, shift={"f1": 0.6}))
    psi = {d.feature: d.psi for d in metrics.compute_interval(db, INTERVAL, THRESHOLDS).drift}
    assert psi["f1"] is not None
    strict = Monitoring(psi_warn=psi["f1"] / 2, psi_alert=psi["f1"] * 2)
    assert {d.feature: d.status for d in metrics.compute_interval(db, INTERVAL, strict).drift}["f1"] == "warn"
    stricter = Monitoring(psi_warn=psi["f1"] / 4, psi_alert=psi["f1"] / 2)
    assert {d.feature: d.status for d in metrics.compute_interval(db, INTERVAL, stricter).drift}[
        "f1"
    ] == "alert"


def test_recompute_is_idempotent_and_follows_changed_labels(db: psycopg.Connection[Any]) -> None:
    events = simulated(INTERVAL, 1000)
    half = np.arange(len(events)) < 500
    store(db, INTERVAL, events, labeled=half)
    metrics.compute_interval(db, INTERVAL, THRESHOLDS)
    first = (table(db, "model_performance"), table(db, "feature_drift"))
    metrics.compute_interval(db, INTERVAL, THRESHOLDS)
    assert (table(db, "model_performance"), table(db, "feature_drift")) == first
    assert first[0][0][3] == 500

    # the rest of the labels arrive: the sweep finds the interval, the recompute counts them
    assert metrics.changed_intervals(db) == []
    with db.cursor() as cur:
        add_labels(cur, INTERVAL, events[~half])
    db.commit()
    assert metrics.changed_intervals(db) == [INTERVAL]
    metrics.compute_interval(db, INTERVAL, THRESHOLDS)
    (row,) = table(db, "model_performance")
    assert row[3] == 1000
    error = (events["y_hat"] - events["y_true"]).to_numpy()
    assert row[4] == pytest.approx(np.abs(error).mean(), rel=1e-12)
    assert metrics.changed_intervals(db) == []


def test_sweep_finds_labelled_intervals_never_monitored_wherever_they_start(
    db: psycopg.Connection[Any],
) -> None:
    older = Interval(START - timedelta(days=8), START - timedelta(days=8) + timedelta(minutes=10))
    store(db, INTERVAL, simulated(INTERVAL, 50))
    store(db, older, simulated(older, 50))
    assert metrics.changed_intervals(db) == [older, INTERVAL]
    result = monitor_step.monitor([])
    assert result.intervals == (older.key, INTERVAL.key)
    assert [r[0] for r in table(db, "model_performance")] == [older.start, START]


def test_a_version_without_a_profile_gets_accuracy_but_no_drift(db: psycopg.Connection[Any]) -> None:
    registry.register_linear(
        db,
        "noprofile_v1",
        coef={"f1": 0.3, "f2": 0.2, "f3": 0.5},
        stats=baseline_profile.BASELINE_STATS,
        actor="test",
    )
    events = simulated(INTERVAL, 300)
    store(db, INTERVAL, events)
    with db.cursor() as cur:
        from tests.monitoring_data import add_predictions

        add_predictions(cur, INTERVAL, events.assign(y_hat=events["y_hat"] + 1.0), "noprofile_v1")
    db.commit()
    report = metrics.compute_interval(db, INTERVAL, THRESHOLDS)
    assert [p.model_version for p in report.performance] == ["baseline_v1", "noprofile_v1"]
    assert report.without_profile == ("noprofile_v1",)
    assert {d.model_version for d in report.drift} == {"baseline_v1"}
    by_version = {p.model_version: p for p in report.performance}
    assert by_version["noprofile_v1"].bias == pytest.approx(by_version["baseline_v1"].bias + 1.0, rel=1e-9)  # type: ignore[operator]


def test_an_interval_without_labels_has_counts_and_no_error_figures(db: psycopg.Connection[Any]) -> None:
    store(db, INTERVAL, simulated(INTERVAL, 100), labeled=np.zeros(100, bool))
    (perf,) = metrics.compute_interval(db, INTERVAL, THRESHOLDS).performance
    assert (perf.n_predictions, perf.n_labeled, perf.mae, perf.rmse, perf.bias) == (100, 0, None, None, None)


def test_a_feature_without_any_value_is_an_alert(db: psycopg.Connection[Any]) -> None:
    events = simulated(INTERVAL, 100)
    events["f2"] = np.nan
    store(db, INTERVAL, events)
    drift = {d.feature: d for d in metrics.compute_interval(db, INTERVAL, THRESHOLDS).drift}
    assert (drift["f2"].psi, drift["f2"].missing_share, drift["f2"].status) == (None, 1.0, "alert")


def test_registration_stores_a_checked_reference_profile(db: psycopg.Connection[Any]) -> None:
    fitted = baseline_profile.baseline_profile()
    registry.register_linear(
        db,
        "profiled_v2",
        coef={"f1": 0.3, "f2": 0.2, "f3": 0.5},
        stats=baseline_profile.BASELINE_STATS,
        actor="test",
        reference_profile=fitted,
        training_from=START,
        training_to=START + timedelta(hours=1),
        validation_metrics={"n": 10, "mae": 0.5},
    )
    row = db.execute(
        "SELECT reference_profile, training_from, training_to, validation_metrics FROM model_versions "
        "WHERE model_version = 'profiled_v2'"
    ).fetchone()
    assert row == (fitted, START, START + timedelta(hours=1), {"n": 10, "mae": 0.5})
    broken = {**fitted, "f3": {"edges": [2.0, 1.0], "expected": [0.2, 0.3, 0.5]}}
    with pytest.raises(registry.RegistryError, match="not finite and increasing"):
        registry.register_linear(
            db,
            "profiled_v3",
            coef={"f1": 0.3, "f2": 0.2, "f3": 0.5},
            stats=baseline_profile.BASELINE_STATS,
            actor="test",
            reference_profile=broken,
        )
    assert db.execute(
        "SELECT count(*) FROM model_versions WHERE model_version = 'profiled_v3'"
    ).fetchone() == (0,)


def test_a_drift_alert_is_posted_to_the_alerts_webhook(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store(db, INTERVAL, simulated(INTERVAL, 1000, shift={"f3": 20.0}))
    with webhook() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_ETLML_ALERTS", f"{hook.url}/hooks/etlml")
        result = monitor_step.monitor([INTERVAL])
    assert result.to_xcom() == {
        "reason": "named by asset events",
        "intervals": [INTERVAL.key],
        "not_computed": [],
        "alerts": 2,
    }
    (post,) = hook.posts
    assert post["path"] == "/hooks/etlml"
    body = post["json"]
    assert (body["source"], body["kind"]) == ("etlml", "drift")
    assert "baseline_v1 f3 PSI" in body["summary"] and "2026-11-25 18:00-18:10 UTC" in body["summary"]
    alerted = {a["feature"]: a for a in body["details"]["new_alerts"]}
    assert set(alerted) == {"f3", "score"}
    stored = db.execute("SELECT psi FROM feature_drift WHERE feature = 'f3'").fetchone()
    assert stored is not None and alerted["f3"]["psi"] == pytest.approx(stored[0])


def test_a_refused_alert_stores_nothing_and_the_retry_sends_it(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store(db, INTERVAL, simulated(INTERVAL, 1000, shift={"f3": 20.0}))
    extras = [{"interval_start": START.isoformat(), "interval_end": INTERVAL.end.isoformat()}]
    with webhook() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_ETLML_ALERTS", hook.url)
        hook.status = 503
        with pytest.raises(AlertError, match="failed: HTTP Error 503"):
            monitor_step.monitor(monitor_step.intervals_of(extras))
        assert table(db, "feature_drift") == [] and table(db, "model_performance") == []
        hook.status = 200
        assert monitor_step.monitor(monitor_step.intervals_of(extras)).alerts == 2
    assert len(hook.posts) == 2
    assert len(table(db, "feature_drift")) == 4


def test_a_slack_webhook_connection_gets_slack_text(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store(db, INTERVAL, simulated(INTERVAL, 500, shift={"f3": 20.0}))
    with webhook() as hook:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ETLML_ALERTS",
            f'{{"conn_type": "slackwebhook", "host": "{hook.url}/services", "password": "T00/B00/XYZ"}}',
        )
        monitor_step.monitor([INTERVAL])
    (post,) = hook.posts
    assert post["path"] == "/services/T00/B00/XYZ"
    assert list(post["json"]) == ["text"] and "drift alert" in post["json"]["text"]


def test_a_huge_error_is_recorded_as_such_and_the_other_intervals_are_still_computed(
    db: psycopg.Connection[Any],
) -> None:
    """A prediction of 5e298 (stored before the contract bounded the inputs) with a label: its square
    overflows float8. Its interval gets rows that say why its figures are missing; the later interval
    the same sweep finds is computed."""
    older = Interval(START - timedelta(minutes=10), START)
    store(db, older, simulated(older, 100, seed=3))
    store(db, INTERVAL, simulated(INTERVAL, 100))
    db.execute(
        "UPDATE predictions SET y_hat = 5e298 WHERE interval_start = %s AND event_id = "
        "(SELECT min(event_id) FROM predictions WHERE interval_start = %s)",
        (older.start, older.start),
    )
    db.commit()
    result = monitor_step.monitor([])
    assert result.intervals == (older.key, INTERVAL.key)
    rows = db.execute(
        "SELECT interval_start, n_predictions, n_labeled, mae, rmse, bias, problem FROM model_performance "
        "ORDER BY interval_start"
    ).fetchall()
    db.rollback()
    (bad, good) = rows
    assert bad[:6] == (older.start, 100, 100, None, None, None)
    assert "1 labelled prediction" in bad[6] and "1e+100" in bad[6]
    assert good[:3] == (START, 100, 100) and good[3] is not None and good[6] is None
    # nothing changed since: the recorded interval is not retried by every sweep
    assert monitor_step.monitor([]).to_xcom()["intervals"] == []


@pytest.mark.parametrize("days", [1, 7])
def test_labels_that_arrive_at_the_windows_edge_are_monitored(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch, days: int
) -> None:
    """Labels of an interval may arrive up to ETLML_LABEL_WINDOW_DAYS after it: the label run of the
    last ended interval may label the events of the interval exactly that far before it, which starts
    before the window of the sweep that follows. Its 100 new labels are counted all the same."""
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", str(days))
    now = datetime.now(UTC)
    label_run_start = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0) - TEN
    edge = Interval(label_run_start - timedelta(days=days), label_run_start - timedelta(days=days) + TEN)
    events = simulated(edge, 200)
    first = np.arange(len(events)) < 100
    store(db, edge, events, labeled=first)
    metrics.compute_interval(db, edge, THRESHOLDS)
    assert table(db, "model_performance")[0][3] == 100
    with db.cursor() as cur:
        add_labels(cur, edge, events[~first])
    db.commit()
    assert monitor_step.monitor([]).to_xcom()["intervals"] == [edge.key]
    assert table(db, "model_performance")[0][3] == 200
    assert monitor_step.monitor([]).to_xcom()["intervals"] == []


def test_a_label_taken_back_is_taken_out_of_the_figures(db: psycopg.Connection[Any]) -> None:
    events = simulated(INTERVAL, 100)
    store(db, INTERVAL, events)
    monitor_step.monitor([])
    assert table(db, "model_performance")[0][3] == 100
    db.execute("DELETE FROM labels WHERE event_id = %s", (events["event_id"].iloc[0],))
    db.commit()
    assert monitor_step.monitor([]).to_xcom()["intervals"] == [INTERVAL.key]
    assert table(db, "model_performance")[0][3] == 99


def test_retention_dropping_a_day_keeps_its_monitoring_rows(db: psycopg.Connection[Any]) -> None:
    """Retention removes a day's labels with its partitions; there is nothing left to compute, and the
    small monitoring tables keep the day's figures."""
    store(db, INTERVAL, simulated(INTERVAL, 100))
    monitor_step.monitor([])
    before = table(db, "model_performance")
    assert before[0][3] == 100
    db.execute("SELECT count(*) FROM etlml_drop_partitions_before(%s)", (START + timedelta(days=1),))
    db.commit()
    assert db.execute("SELECT count(*) FROM labels").fetchone() == (0,)
    db.rollback()
    assert monitor_step.monitor([]).to_xcom()["intervals"] == []
    assert table(db, "model_performance") == before
