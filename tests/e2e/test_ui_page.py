"""The etlml page and monitoring in a real Airflow (`airflow standalone`): the scheduler runs the
pipeline over two closed intervals, the label ingest and 30_monitor on the asset events they emit;
then headless Chromium logs in and reads off the page the intervals, their events, label coverage,
realized MAE and a drift alert, all of them rows the pipeline and the monitor made.

The stack's settings make the rest observable within a test: the simulator gives an interval's labels
one interval later (``ETLML_SIMULATOR_LABEL_DELAY=1``), f3 drifts (``ETLML_SIMULATOR_SHIFT``), and
a pipeline run must finish by its interval's end (``ETLML_FINISH_WITHIN_MINUTES=0``), so the two
catch-up runs miss their deadline: the scheduler detects it, and the triggerer's notifier posts it to
a local HTTP server through the ``etlml_alerts`` connection, as a user configures it."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from scripts import localstack
from tests.e2e.browser import CHROMIUM, chromium_available, chromium_page
from tests.e2e.conftest import AIRFLOW, Stack, _start_stack
from tests.e2e.pipeline_checks import INIT, PIPELINE
from tests.monitoring_data import Webhook, webhook

pytestmark = [pytest.mark.e2e, pytest.mark.db]

log = logging.getLogger(__name__)
T = TypeVar("T")
LABELS, MONITOR = "15_ingest_labels", "30_monitor"
LABELS_URI = "x-etlml://warehouse/public/labels"
STEP = timedelta(minutes=10)
SCHEDULED_EVENTS = 200  # the pipeline's default simulated_events
START = localstack.current_interval_start() - 2 * STEP
HOOK_PATH = "/hooks/etlml"


@pytest.fixture(scope="module")
def alerts() -> Iterator[Webhook]:
    """The local HTTP server the stack's ``etlml_alerts`` connection points at."""
    with webhook() as hook:
        yield hook


@pytest.fixture(scope="module")
def ui_stack(warehouse_dsn: str, metadata_template: str, alerts: Webhook) -> Iterator[Stack]:
    """`airflow standalone` whose pipeline starts two closed intervals back: the scheduler runs both
    once the pipeline is unpaused."""
    settings = {
        "ETLML_START_DATE": START.isoformat(),
        "ETLML_SIMULATOR_LABEL_DELAY": "1",
        "ETLML_SIMULATOR_SHIFT": "f3=+20",
        "ETLML_FINISH_WITHIN_MINUTES": "0",
        "AIRFLOW_CONN_ETLML_ALERTS": alerts.url + HOOK_PATH,
    }
    yield from _start_stack("ui", [[AIRFLOW, "standalone"]], settings, template=metadata_template)


def wait_for(stack: Stack, what: str, found: Callable[[], T | None], timeout: float = 600) -> T:
    """``found()`` once it is neither None nor empty; fails after ``timeout`` or if a component exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        localstack.check_all(stack.components)
        value = found()
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"{what}: not within {timeout:.0f} s")


def scheduled(stack: Stack, dag_id: str, count: int) -> list[dict[str, Any]] | None:
    """The first ``count`` scheduled runs of ``dag_id``, oldest first, once all have succeeded."""
    runs = [r for r in stack.api.runs(dag_id) if r["run_type"] == "scheduled"]
    assert not [r for r in runs if r["state"] == "failed"], runs
    done = sorted((r for r in runs if r["state"] == "success"), key=lambda r: str(r["data_interval_start"]))
    return done[:count] if len(done) >= count else None


def upstream_events(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    path = f"/api/v2/dags/{MONITOR}/dagRuns/{run_id}/upstreamAssetEvents"
    events: list[dict[str, Any]] = stack.api._call("GET", path)["asset_events"]
    return events


def labels_triggered(stack: Stack) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The first finished asset-triggered 30_monitor run a ``labels`` event that names an interval
    triggered, with that event."""
    runs = [r for r in stack.api.runs(MONITOR) if r["run_type"] == "asset_triggered"]
    for run in sorted(runs, key=lambda r: str(r["queued_at"])):
        if run["state"] not in localstack.TERMINAL_STATES:
            continue
        for event in upstream_events(stack, run["dag_run_id"]):
            if event["uri"] == LABELS_URI and event["extra"].get("intervals"):
                return run, event
    return None


@pytest.fixture(scope="module")
def monitored(ui_stack: Stack) -> dict[str, Any]:
    """The schema, then the monitor (before the pipeline: its predictions events trigger it), the
    pipeline and, once the first interval is loaded, the label ingest, all under the scheduler; until
    a labels event has triggered 30_monitor and no monitor run is left unfinished."""
    api = ui_stack.api
    api.wait_for_dag(INIT)
    api.unpause(INIT)
    init_run = api.trigger(INIT)
    assert api.wait_for_run(INIT, init_run) == "success", api.task_states(INIT, init_run)
    for dag_id in (MONITOR, PIPELINE, LABELS):
        api.wait_for_dag(dag_id)
    api.unpause(MONITOR)
    api.unpause(PIPELINE)
    wait_for(ui_stack, "the pipeline's first interval", lambda: scheduled(ui_stack, PIPELINE, 1))
    # unpaused now, its run of START + 10 minutes finds START's events loaded without waiting a poke
    api.unpause(LABELS)
    pipeline_runs = wait_for(ui_stack, "two pipeline runs", lambda: scheduled(ui_stack, PIPELINE, 2))
    label_runs = wait_for(ui_stack, "two label runs", lambda: scheduled(ui_stack, LABELS, 2))
    run, event = wait_for(ui_stack, "a monitor run of a labels event", lambda: labels_triggered(ui_stack))
    wait_for(
        ui_stack,
        "every monitor run finished",
        lambda: all(r["state"] in localstack.TERMINAL_STATES for r in api.runs(MONITOR)) or None,
    )
    return {"pipeline": pipeline_runs, "labels": label_runs, "monitor_run": run, "labels_event": event}


@pytest.fixture(scope="module")
def intervals(ui_stack: Stack, monitored: dict[str, Any]) -> dict[datetime, int]:
    """The first two intervals the scheduler ran, each with the events stored for it (the pipeline's
    default, SCHEDULED_EVENTS)."""
    starts = [datetime.fromisoformat(r["data_interval_start"]) for r in monitored["pipeline"]]
    assert starts == [START, START + STEP]
    with psycopg.connect(ui_stack.dbs.warehouse_url) as conn:
        stored = dict(
            conn.execute(
                "SELECT interval_start, count(*) FROM processed_data WHERE interval_start = ANY(%s) "
                "GROUP BY interval_start",
                (starts,),
            ).fetchall()
        )
    assert stored == dict.fromkeys(starts, SCHEDULED_EVENTS)
    return stored


def log_in(page: Any, base_url: str) -> None:
    """Open the page without a login: Airflow's login form comes instead; sign in and land on the page."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/etlml/")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/auth/login"), timeout=30_000)


def shown_events(page: Any) -> dict[datetime, int]:
    found = page.eval_on_selector_all(
        "tr.interval",
        "rows => rows.map(r => [r.dataset.intervalStart, r.querySelector('[data-events]').dataset.events])",
    )
    return {datetime.fromisoformat(start): int(events) for start, events in found}


@pytest.fixture(scope="module")
def shots(ui_stack: Stack) -> Path:
    folder = ui_stack.logs / "ui-page"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_page_shows_the_runs_intervals_and_events(
    ui_stack: Stack, intervals: dict[datetime, int], shots: Path
) -> None:
    from playwright.sync_api import expect

    if not chromium_available():
        pytest.fail(f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium")
    with chromium_page() as page:
        log_in(page, ui_stack.base_url)
        page.goto(f"{ui_stack.base_url}/etlml/")
        expect(page.locator("h1")).to_have_text("etlml")
        expect(
            page.locator(f"tr.interval[data-interval-start='{max(intervals).isoformat()}']")
        ).to_be_visible()
        shown = shown_events(page)
        # each run's interval with the events it extracted (a later interval may have run meanwhile)
        assert {start: shown.get(start) for start in intervals} == intervals
        gates = page.eval_on_selector_all("td.gate", "cells => cells.map(c => c.textContent)")
        assert gates == ["passed"] * len(shown)
        expect(page.locator("#models [data-alias=champion]")).to_have_attribute("data-version", "baseline_v1")
        page.screenshot(path=str(shots / "etlml-page.png"), full_page=True)

        # the navigation entry shows the same page inside the UI
        page.goto(f"{ui_stack.base_url}/")
        page.locator("a[href$='plugin/etlml']").first.click(timeout=30_000)
        expect(page).to_have_url(re.compile(r"/plugin/etlml"), timeout=30_000)
        frame = page.frame_locator("iframe[title=etlml]")
        first = min(intervals).isoformat()
        expect(frame.locator(f"tr.interval[data-interval-start='{first}'] [data-events]")).to_have_text(
            f"{intervals[min(intervals)]:,}", timeout=30_000
        )
        page.screenshot(path=str(shots / "etlml-in-the-ui.png"))
    assert (shots / "etlml-page.png").stat().st_size > 10_000


def test_a_labels_ingest_triggers_30_monitor_for_the_intervals_it_names(
    ui_stack: Stack, monitored: dict[str, Any], intervals: dict[datetime, int]
) -> None:
    """The label run of START + 10 minutes stores the labels of START's events; its ``labels`` event
    names START, the scheduler triggers 30_monitor on it, and that run computes what its events name:
    START's realized MAE over all its labels, equal to a recomputation in SQL."""
    run, event = monitored["monitor_run"], monitored["labels_event"]
    assert run["state"] == "success"
    assert event["source_dag_id"] == LABELS and event["source_run_id"] == monitored["labels"][1]["dag_run_id"]
    assert event["extra"]["intervals"] == [
        {"interval_start": START.isoformat(), "interval_end": (START + STEP).isoformat()}
    ]
    named = {
        datetime.fromisoformat(bounds["interval_start"])
        for e in upstream_events(ui_stack, run["dag_run_id"])
        for bounds in e["extra"].get("intervals", [e["extra"]])
    }
    with psycopg.connect(ui_stack.dbs.warehouse_url) as conn:
        row = conn.execute(
            "SELECT n_predictions, n_labeled, mae, computed_at FROM model_performance "
            "WHERE interval_start = %s AND model_version = 'baseline_v1'",
            (START,),
        ).fetchone()
        recomputed = conn.execute(
            "SELECT count(*), avg(abs(p.y_hat - l.y_true)) FROM predictions p JOIN labels l USING (event_id) "
            "WHERE p.interval_start = %s AND p.model_version = 'baseline_v1'",
            (START,),
        ).fetchone()
        computed = {r[0] for r in conn.execute("SELECT DISTINCT interval_start FROM model_performance")}
    assert row is not None and recomputed is not None
    assert row[:2] == (intervals[START], intervals[START]) == (recomputed[0], recomputed[0])
    assert row[2] == pytest.approx(float(recomputed[1]), rel=1e-9)
    labelled_at = datetime.fromisoformat(event["timestamp"])
    assert row[3] > labelled_at  # computed after the labels event, by a run it triggered
    log.warning(
        "labels event at %s: realized MAE computed %s later", labelled_at.isoformat(), row[3] - labelled_at
    )
    assert START in named and named <= computed


def deadline_posts(alerts: Webhook, runs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The deadline alerts posted for ``runs``, once there is one for each."""
    ids = {r["dag_run_id"] for r in runs}
    found = [p for p in alerts.posts if p["json"]["kind"] == "deadline"]
    return found if ids <= {p["json"]["details"].get("run_id") for p in found} else None


def test_the_scheduler_detects_missed_deadlines_and_the_notifier_posts_them(
    ui_stack: Stack, monitored: dict[str, Any], alerts: Webhook
) -> None:
    """Both catch-up runs of the pipeline started after their deadline (their interval's end, with
    ETLML_FINISH_WITHIN_MINUTES=0): the scheduler marks each deadline missed and the triggerer runs
    the notifier, which posts once per run, naming the DAG, the run and the deadline."""
    runs = monitored["pipeline"]
    posts = wait_for(ui_stack, "a deadline alert for each run", lambda: deadline_posts(alerts, runs), 120)
    for run in runs:
        (post,) = [p for p in posts if p["json"]["details"]["run_id"] == run["dag_run_id"]]
        assert post["path"] == HOOK_PATH
        details = post["json"]["details"]
        assert details["dag_id"] == PIPELINE
        expected = datetime.fromisoformat(run["logical_date"]) + STEP  # + 0 minutes to finish
        assert datetime.fromisoformat(details["deadline_time"]) == expected
        assert details["data_interval_end"] == run["data_interval_end"]
        assert "did not finish within 0 minutes" in post["json"]["summary"]


def test_the_page_shows_coverage_mae_and_drift_the_monitor_computed(
    ui_stack: Stack, intervals: dict[datetime, int], alerts: Webhook, shots: Path
) -> None:
    """START's label coverage and realized MAE, and f3's drift alert in the latest interval, as the
    monitor stored them (f3 is shifted by 20); its drift alert was posted too."""
    from playwright.sync_api import expect

    starts = sorted(intervals)
    latest = starts[-1].isoformat()
    with psycopg.connect(ui_stack.dbs.warehouse_url) as conn:
        (mae,) = conn.execute(
            "SELECT mae FROM model_performance WHERE interval_start = %s AND model_version = 'baseline_v1'",
            (START,),
        ).fetchone() or (None,)
        (psi,) = conn.execute(
            "SELECT psi FROM feature_drift WHERE interval_start = %s AND model_version = 'baseline_v1' "
            "AND feature = 'f3' AND status = 'alert'",
            (starts[-1],),
        ).fetchone() or (None,)
    assert mae is not None and psi is not None
    assert any(p["json"]["kind"] == "drift" and "f3" in p["json"]["summary"] for p in alerts.posts)
    with chromium_page() as page:
        log_in(page, ui_stack.base_url)
        page.goto(f"{ui_stack.base_url}/etlml/")
        covered = page.locator(f"tr.interval[data-interval-start='{START.isoformat()}'] td[data-coverage]")
        expect(covered).to_have_attribute("data-labeled", str(intervals[START]))
        assert float(covered.get_attribute("data-coverage")) == 1.0
        point = page.locator(f"#performance circle[data-interval-start='{START.isoformat()}']")
        expect(point).to_have_attribute("data-n-labeled", str(intervals[START]))
        assert float(point.get_attribute("data-mae")) == pytest.approx(mae)
        cell = page.locator(f"tr.drift[data-interval-start='{latest}'] td[data-feature=f3]")
        expect(cell).to_have_class(re.compile(r"\bpsi-alert\b"))
        expect(cell).to_have_text(f"{psi:.3f}")
        # the champion's latest scored interval: the scheduler goes on with the intervals that close
        # after the first two, so it is ``latest`` or a later one, every score of it counted
        caption = page.locator("#score p[data-n]")
        shown = datetime.fromisoformat(caption.get_attribute("data-interval-start") or "")
        assert shown >= starts[-1]
        with psycopg.connect(ui_stack.dbs.warehouse_url) as conn:
            (scored,) = conn.execute(
                "SELECT count(*) FROM predictions WHERE interval_start = %s AND model_version = %s",
                (shown, "baseline_v1"),
            ).fetchone() or (0,)
        assert caption.get_attribute("data-n") == str(scored) == str(SCHEDULED_EVENTS)
        shares = page.eval_on_selector_all(
            "table.score-bins tr[data-bin]", "rows => rows.map(r => [r.dataset.expected, r.dataset.actual])"
        )
        assert len(shares) >= 2
        assert sum(float(e) for e, _ in shares) == pytest.approx(1.0)
        assert sum(float(a) for _, a in shares) == pytest.approx(1.0)
        page.screenshot(path=str(shots / "etlml-page-monitored.png"), full_page=True)
