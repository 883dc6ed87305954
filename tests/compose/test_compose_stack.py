"""docker-compose.yml under a real Docker engine, as users start it, and docker-compose.workers.yml:
two Celery workers in separate containers (separate filesystems), one of them killed mid-backfill.

Each deployment backfills the same day (144 intervals of 1,000 events) with Airflow's `backfill create`;
the two warehouses must then hold the same rows. Figures go to test-output/compose.json."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime

import pytest
from packaging.specifiers import SpecifierSet

from tests.compose.day import DAY_END, EVENTS, INTERVALS, INVALID, Result, readme_commands
from tests.compose.engine import PROJECT_IMAGE, Engine
from tests.conftest import ROOT

pytestmark = [pytest.mark.compose, pytest.mark.timeout(3 * 3600)]


def test_the_image_runs_the_locked_airflow_on_the_required_python(engine: Engine) -> None:
    """What tests/deploy reads in the Dockerfile, asked of the built image (no network, as built)."""
    ran = engine.docker("run", "--rm", "--network", "none", PROJECT_IMAGE, "bash", "-c",
                        "python --version && airflow version && id -u && id -g")  # fmt: skip
    python, airflow, uid, gid = ran.stdout.split("\n")[:4]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(python.split()[1]), python
    lock = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert lock and airflow == lock[1]
    assert (uid, gid) == ("50000", "0")  # the official image's user, which the compose file runs as


def test_the_readme_commands_start_every_service_healthy(one_host: Result) -> None:
    assert one_host.commands == readme_commands()
    assert one_host.commands[1:] == ["docker compose up airflow-init", "docker compose up -d"]
    assert one_host.healthy_after_s > 0


def test_a_days_backfill_and_a_triggered_run_succeed_on_one_worker(one_host: Result) -> None:
    assert one_host.backfill_states == {"success": INTERVALS}
    assert one_host.manual_run.endswith(": success")
    assert len(one_host.split) == 1, one_host.split
    assert one_host.retried == []  # every task succeeded at its first try
    # every audit balanced: read = loaded + rejected, and every loaded event stored and scored
    assert one_host.audits == (INTERVALS, INTERVALS * EVENTS, INTERVALS * (EVENTS - INVALID), INTERVALS)
    assert one_host.orphans == 0
    assert all(one_host.digests.values()), one_host.digests
    # the shadow version's artifact, stored by the registry on the storage volume every service mounts
    assert one_host.artifact_uri == "file:///opt/airflow/storage/+models/sk1/model.skops"


def test_a_browser_logs_in_and_the_etlml_page_shows_the_runs(one_host: Result) -> None:
    shown = {datetime.fromisoformat(start): tuple(n) for start, n in one_host.page["intervals"].items()}
    assert DAY_END in shown, shown  # the triggered run's interval, and as many of the day's as the page lists
    assert len(shown) > 1 and set(shown.values()) == {(EVENTS, INVALID)}, shown  # (events read, rejected)


def test_down_leaves_nothing_running(one_host: Result, two_workers: Result) -> None:
    assert one_host.left_behind == {}
    assert two_workers.left_behind == {}


def test_two_workers_without_shared_disk_store_the_same_day(one_host: Result, two_workers: Result) -> None:
    assert two_workers.backfill_states == {"success": INTERVALS}
    assert two_workers.manual_run.endswith(": success")
    assert len(two_workers.split) == 2 and min(two_workers.split.values()) > 0, two_workers.split
    assert two_workers.digests == one_host.digests
    assert two_workers.audits == one_host.audits
    assert two_workers.orphans == 0
    # the artifact is on the S3 server: each worker scored the shadow version by reading it through its URI
    assert two_workers.artifact_uri == "s3://aws_default@etlml/storage/+models/sk1/model.skops"
    # finished tasks' logs are read from the S3 server, whichever worker ran them
    assert len(two_workers.logs_read) == 2 and min(two_workers.logs_read.values()) > 0, two_workers.logs_read


def test_a_killed_worker_s_tasks_are_retried_on_the_other(two_workers: Result) -> None:
    """What the killed worker had not finished failed there (no heartbeat) and succeeded on the other
    worker; no other task needed a second try, so none read what its worker could not see."""
    killed = two_workers.killed
    assert killed.get("tasks"), "the second worker never ran two steps at once while the backfill ran"
    retried = {tuple(r["task"]): r["tries"] for r in killed["retried"]}
    assert retried, f"every task running at the kill had finished before it: {killed['tasks']}"
    # every task that needed a second try had its earlier ones on the lost worker (a task may have started
    # there between the listing above and the kill)
    for task, tries in retried.items():
        *earlier, (_, last_state, last_host) = tries
        assert [(state, host) for _, state, host in earlier] == [("failed", killed["hostname"])] * len(
            earlier
        ), task
        assert (last_state, last_host != killed["hostname"]) == ("success", True), (task, tries)
