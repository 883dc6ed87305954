"""The etlml page in a real Airflow (`airflow standalone`): the pipeline runs a few intervals under the
scheduler, then headless Chromium logs in and reads the intervals and their event counts off the page,
on its own and inside the UI's navigation, and screenshots it; with monitoring rows added, the PSI grid
shows an alert."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from scripts import localstack
from tests import page_rows as rows
from tests.e2e.browser import CHROMIUM, chromium_available, chromium_page
from tests.e2e.conftest import AIRFLOW, Stack, _start_stack
from tests.e2e.pipeline_checks import INIT, PIPELINE

pytestmark = [pytest.mark.e2e, pytest.mark.db]

SCHEDULED_EVENTS = 200  # the pipeline's default simulated_events
START = localstack.current_interval_start() - 2 * rows.STEP


@pytest.fixture(scope="module")
def ui_stack(warehouse_dsn: str) -> Iterator[Stack]:
    """`airflow standalone` whose pipeline starts two closed intervals back: the scheduler runs both
    once the pipeline is unpaused."""
    yield from _start_stack("ui", [[AIRFLOW, "standalone"]], {"ETLML_START_DATE": START.isoformat()})


@pytest.fixture(scope="module")
def intervals(ui_stack: Stack) -> dict[datetime, int]:
    """The first two intervals the scheduler ran, each with the events stored for it (the pipeline's
    default, SCHEDULED_EVENTS)."""
    api = ui_stack.api
    api.wait_for_dag(INIT)
    api.unpause(INIT)
    init_run = api.trigger(INIT)
    assert api.wait_for_run(INIT, init_run) == "success", api.task_states(INIT, init_run)
    api.wait_for_dag(PIPELINE)
    api.unpause(PIPELINE)
    scheduled = wait_for_scheduled(ui_stack, count=2)
    starts = [datetime.fromisoformat(r["data_interval_start"]) for r in scheduled]
    assert starts == [START, START + rows.STEP]
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


def wait_for_scheduled(stack: Stack, count: int, timeout: float = 600) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        localstack.check_all(stack.components)
        runs = [r for r in stack.api.runs(PIPELINE) if r["run_type"] == "scheduled"]
        done = [r for r in runs if r["state"] == "success"]
        assert not [r for r in runs if r["state"] == "failed"], runs
        if len(done) >= count:
            return sorted(done, key=lambda r: str(r["data_interval_start"]))[:count]
        time.sleep(3)
    raise TimeoutError(f"fewer than {count} scheduled runs of {PIPELINE} succeeded in {timeout:.0f} s")


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


def test_with_monitoring_rows_the_grid_shows_an_alert(
    ui_stack: Stack, intervals: dict[datetime, int], shots: Path
) -> None:
    """30_monitor and `etlml models` are not on this branch: their rows are written directly, for the
    intervals that ran: v2, with a reference profile fitted on the first interval's inputs and scores,
    promoted on a comparison and scoring the latest interval 0.3 higher than baseline_v1; PSI with f3 in
    alert in the latest interval; realized MAE and label coverage."""
    from playwright.sync_api import expect

    starts = sorted(intervals)
    with psycopg.connect(ui_stack.dbs.warehouse_url, autocommit=True) as conn:
        add_promoted_v2(conn, starts)
        for i, start in enumerate(starts):
            n = intervals[start]
            for version, mae in (("baseline_v1", 0.52 - 0.01 * i), ("v2", 0.47 - 0.015 * i)):
                rows.add_performance(conn, start, version, n_predictions=n, n_labeled=n // (3 - i), mae=mae)
            f3 = 0.41 if start == starts[-1] else 0.05
            rows.add_drift(conn, start, "baseline_v1", {"f1": 0.01, "f2": 0.03, "f3": f3, "score": 0.02}, n=n)
    with chromium_page() as page:
        log_in(page, ui_stack.base_url)
        page.goto(f"{ui_stack.base_url}/etlml/")
        latest = starts[-1].isoformat()
        cell = page.locator(f"tr.drift[data-interval-start='{latest}'] td[data-feature=f3]")
        expect(cell).to_have_class(re.compile(r"\bpsi-alert\b"))
        expect(cell).to_have_text("0.410")
        expect(page.locator("#performance circle")).to_have_count(2 * len(starts))
        expect(page.locator("table.evidence")).to_have_attribute("data-better", "true")
        caption = page.locator("#score p[data-n]")
        expect(caption).to_have_attribute("data-interval-start", latest)
        expect(caption).to_have_attribute("data-n", str(intervals[starts[-1]]))
        shares = page.eval_on_selector_all(
            "table.score-bins tr[data-bin]", "rows => rows.map(r => [r.dataset.expected, r.dataset.actual])"
        )
        assert len(shares) >= 2
        assert sum(float(e) for e, _ in shares) == pytest.approx(1.0)
        assert sum(float(a) for _, a in shares) == pytest.approx(1.0)
        page.screenshot(path=str(shots / "etlml-page-monitored.png"), full_page=True)


def add_promoted_v2(conn: psycopg.Connection[Any], starts: list[datetime]) -> None:
    from etlml.features.profile import reference_profile

    fitted = conn.execute(
        "SELECT d.f1, d.f2, d.f3, p.y_hat FROM processed_data d "
        "JOIN predictions p USING (interval_start, event_id) "
        "WHERE d.interval_start = %s AND p.model_version = 'baseline_v1'",
        (starts[0],),
    ).fetchall()
    reference = reference_profile(
        {c: [r[i] for r in fitted] for i, c in enumerate(("f1", "f2", "f3", "score"))}
    )
    rows.add_version(conn, "v2", reference=reference, trained=starts[0] - timedelta(hours=2))
    conn.execute(
        "INSERT INTO predictions (interval_start, event_id, model_version, y_hat, ts_utc, written_by_run) "
        "SELECT p.interval_start, p.event_id, 'v2', p.y_hat + 0.3, p.ts_utc, 'test/run' FROM predictions p "
        "JOIN processed_data d USING (interval_start, event_id) "
        "WHERE d.interval_start = %s AND p.model_version = 'baseline_v1'",
        (starts[-1],),
    )
    rows.add_comparison(conn, "baseline_v1", "v2", starts[-1], diff=-0.046, ci=(-0.071, -0.022))
    rows.set_alias(conn, "champion", "v2")
    rows.set_alias(conn, "challenger", "baseline_v1")
    evidence = {"n": 450, "mae_diff": -0.046, "ci": [-0.071, -0.022]}
    rows.add_model_event(conn, "promote", "v2", "baseline_v1", {"if_better": True, "evidence": evidence})
