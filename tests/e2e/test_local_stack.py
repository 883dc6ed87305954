"""`airflow standalone` (LocalExecutor): both DAGs through the REST API, then the UI in a real browser."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.browser import CHROMIUM, chromium_available, chromium_page
from tests.e2e.conftest import Stack
from tests.e2e.pipeline_checks import PIPELINE, check_rows, run_both_dags

pytestmark = [pytest.mark.e2e, pytest.mark.db]


def is_login_request(response: Any) -> bool:
    """The SimpleAuthManager login form's POST of the credentials."""
    return bool(response.request.method == "POST" and response.url.endswith("/auth/token"))


@pytest.fixture(scope="module")
def finished_run(local_stack: Stack) -> dict[str, Any]:
    return run_both_dags(local_stack)


def test_scheduler_runs_both_dags_and_rows_land(local_stack: Stack, finished_run: dict[str, Any]) -> None:
    assert finished_run["state"] == "success"
    check_rows(local_stack, finished_run)


def test_every_task_of_the_run_succeeded_once(local_stack: Stack, finished_run: dict[str, Any]) -> None:
    states = local_stack.api.task_states(PIPELINE, finished_run["dag_run_id"])
    # one shard: the mapped tasks have one instance each
    assert states == dict.fromkeys(
        [
            "wait_for_window",
            "extract",
            "transform[0]",
            "load_processed",
            "predict[0]",
            "store_predictions[0]",
        ],
        "success",
    )


def test_ui_login_shows_the_successful_run(local_stack: Stack, finished_run: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    if not chromium_available():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (see Makefile system-deps)"
        )
    shots = local_stack.logs / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    with chromium_page() as page:
        page.goto(f"{local_stack.base_url}/")
        expect(page).to_have_url(re.compile(r"/auth/login"))
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "admin")
        with page.expect_response(is_login_request, timeout=30_000) as answer:
            page.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 201  # a token was issued
        expect(page).not_to_have_url(re.compile(r"/auth/login"), timeout=30_000)
        page.goto(f"{local_stack.base_url}/dags/{PIPELINE}/runs")
        expect(page.get_by_text(PIPELINE).first).to_be_visible(timeout=30_000)
        row = page.locator("tr", has_text=finished_run["dag_run_id"])
        expect(row).to_contain_text("Success", timeout=30_000)
        page.screenshot(path=str(shots / "runs.png"), full_page=True)
    assert (shots / "runs.png").stat().st_size > 10_000


def test_ui_refuses_a_wrong_password(local_stack: Stack) -> None:
    from playwright.sync_api import expect

    with chromium_page() as page:
        page.goto(f"{local_stack.base_url}/auth/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "not-the-password")
        # wait for the server's answer to this login, not a fixed time: the page was on /auth/login
        # before the click, so its URL alone would pass even if the form was never sent
        with page.expect_response(is_login_request, timeout=30_000) as answer:
            page.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 401
        expect(page.get_by_text("Invalid credentials")).to_be_visible(timeout=30_000)
        expect(page).to_have_url(re.compile(r"/auth/login"))
        page.goto(f"{local_stack.base_url}/dags/{PIPELINE}/runs")
        expect(page).to_have_url(re.compile(r"/auth/login"), timeout=30_000)
