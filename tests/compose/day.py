"""A day's backfill on a Compose deployment, as a user drives it: the README's commands, the REST API,
Airflow's ``backfill create`` and a browser; what it stored, which worker ran what, and how long."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scripts import localstack
from tests.compose.engine import Deployment
from tests.conftest import ROOT
from tests.helpers import doc_section

PIPELINE, INIT = "10_etl_ml_pipeline", "00_init_schema"
# ETLML_COMPOSE_INTERVALS: fewer intervals, to try a change to this layer quickly (the layer's claim is 144)
INTERVALS, EVENTS = int(os.environ.get("ETLML_COMPOSE_INTERVALS", "144")), 1000
# the day: the 144 intervals before the last complete one when the session began, the same for both
# deployments; that last one is the triggered run's (a run's logical date is never in the future)
DAY_END = localstack.current_interval_start() - timedelta(minutes=10)
DAY_START = DAY_END - timedelta(minutes=10 * INTERVALS)
# a finished day is hours past every run's freshness deadline: the backfill raises it (docs/deploy.md)
FINISH_WITHIN_MINUTES = str(3 * 24 * 60)
# the landing files: each interval's events as CSV, INVALID of them with an f1 that is not a number
INVALID = 10
# a worker is killed once this many backfill runs have succeeded, while it runs tasks
KILL_AFTER_RUNS = INTERVALS * 2 // 3
BACKFILL_TIMEOUT = 45 * 60
# What each table holds for the day, without the columns that say when it was written.
_DAY = f"interval_start >= '{DAY_START.isoformat()}' AND interval_start < '{DAY_END.isoformat()}'"
DIGESTS = {
    "processed_data": "SELECT md5(string_agg((event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, "
    "f2_imputed, f3_imputed, normalized_with, interval_start, interval_end)::text, '|' ORDER BY event_id)) "
    f"FROM processed_data WHERE {_DAY}",
    "predictions": "SELECT md5(string_agg((event_id, model_version, y_hat, ts_utc, written_by_run)::text, "
    f"'|' ORDER BY event_id, model_version)) FROM predictions WHERE {_DAY}",
    "rejected_events": "SELECT md5(string_agg((interval_start, interval_end, source_file, row_number, "
    "reason, message, event_id, raw, written_by_run)::text, '|' ORDER BY source_file, row_number)) "
    f"FROM rejected_events WHERE {_DAY}",
    "run_audit": "SELECT md5(string_agg((interval_start, interval_end, source, extracted, loaded, rejected, "
    "deduplicated, gate, by_reason, written_by_run)::text, '|' ORDER BY interval_start)) FROM run_audit "
    f"WHERE dag_id = '{PIPELINE}' AND {_DAY}",
}
UPLOAD = """
import pathlib, sys
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
hook, root = S3Hook(aws_conn_id="aws_default"), pathlib.Path(sys.argv[1])
for path in sorted(root.rglob("*.csv")):
    key = "landing/" + path.relative_to(root).as_posix()
    hook.load_file(str(path), key, bucket_name="etlml", replace=True)
"""
# the champion, and the version with a stored artifact the test registers to score in shadow beside it
CHAMPION, SHADOW = "baseline_v1", "sk1"
SHADOW_STATS = {"f1": {"mean": 9, "std": 3}, "f2": {"mean": 0.5, "std": 2}, "f3": {"mean": 95, "std": 12}}
_SCORED = (
    "(SELECT count(*) FROM predictions p "
    "WHERE p.interval_start = a.interval_start AND p.model_version = '{}')"
)
COUNTS = (
    f"SELECT count(*), sum(extracted), sum(loaded), "
    f"count(*) FILTER (WHERE extracted = loaded + rejected + deduplicated AND loaded = (SELECT count(*) "
    f"FROM processed_data d WHERE (d.interval_start, d.interval_end) = (a.interval_start, a.interval_end)) "
    f"AND loaded = {_SCORED.format(CHAMPION)} AND loaded = {_SCORED.format(SHADOW)}) "
    f"FROM run_audit a WHERE dag_id = '{PIPELINE}' AND {_DAY}"
)
ORPHANS = (
    "SELECT count(*) FROM predictions p WHERE NOT EXISTS (SELECT 1 FROM processed_data d "
    "WHERE (d.interval_start, d.event_id) = (p.interval_start, p.event_id))"
)


@dataclass
class Result:
    """What a deployment did with the day."""

    healthy_after_s: float = 0.0
    commands: list[str] = field(default_factory=list)
    backfill_states: Counter[str] = field(default_factory=Counter)
    manual_run: str = ""
    artifact_uri: str = ""
    backfill_minutes: float = 0.0
    runs_per_minute: float = 0.0
    split: Counter[str] = field(default_factory=Counter)
    # the day's task instances that needed more than one try: (run, task, map index, tries)
    retried: list[tuple[str, str, int, int]] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    audits: tuple[int, int, int, int] = (0, 0, 0, 0)
    orphans: int = -1
    logs_read: dict[str, int] = field(default_factory=dict)
    page: dict[str, Any] = field(default_factory=dict)
    killed: dict[str, Any] = field(default_factory=dict)
    left_behind: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__)


def readme_commands() -> list[str]:
    """The commands docs/deploy.md gives to start the stack, in its order."""
    block = doc_section("Deploy with Docker Compose")
    return [
        line.split("#")[0].strip()
        for line in block.splitlines()
        if re.match(r"(python3 scripts/compose_env.py|docker compose up)", line.strip())
    ]


def _start(deployment: Deployment, result: Result) -> localstack.AirflowApi:
    """Run the README's commands in the deployment's folder (``docker compose`` as ``docker-compose``)."""
    for command in readme_commands():
        result.commands.append(command)
        if command.startswith("python3 "):
            subprocess.run(command.split(), cwd=deployment.folder, check=True, capture_output=True)
            # the day lies before the interval compose_env.py starts the pipeline at
            deployment.set_env(
                ETLML_START_DATE=DAY_START.isoformat(),
                ETLML_FINISH_WITHIN_MINUTES=FINISH_WITHIN_MINUTES,
                ETLML_SOURCE="landing",
            )
            if "docker-compose.workers.yml" in deployment.compose_files:
                from tests import objectstore

                deployment.set_env(AIRFLOW_CONN_AWS_DEFAULT=objectstore.airflow_connection("http://s3:5000"))
        else:
            deployment.compose(*command.split()[2:])
    result.healthy_after_s = round(deployment.wait_healthy(), 1)
    api = localstack.AirflowApi(
        deployment.extra_env["AIRFLOW_BASE_URL"], "admin", deployment.env_file()["_AIRFLOW_WWW_USER_PASSWORD"]
    )
    api.wait_healthy()
    api.login()
    return api


def write_landing(folder: Path) -> int:
    """The day's files and the next interval's (the triggered run's), ``EVENTS`` records each: simulated
    events with ``INVALID`` bad ones, in ``YYYY-MM-DD/HHMM/events.csv``. Returns the files written."""
    from etlml.ingest.landing import partition_key
    from etlml.ingest.simulator import SimulatedSource
    from etlml.interval import Interval

    folder.chmod(0o755)  # docker cp keeps the mode: the containers' user must read the copy
    source = SimulatedSource(7, EVENTS)
    for k in range(INTERVALS + 1):
        start = DAY_START + timedelta(minutes=10 * k)
        interval = Interval(start, start + timedelta(minutes=10))
        events = source.events(interval).reset_index()
        events["ts_utc"] = events["ts_utc"].map(lambda ts: ts.isoformat())
        events["f1"] = events["f1"].astype(object)
        events.loc[events.index[:: EVENTS // INVALID][:INVALID], "f1"] = "n/a"
        (folder / partition_key(interval)).mkdir(parents=True)
        events.to_csv(folder / partition_key(interval) / "events.csv", index=False,
                      columns=["event_id", "ts_utc", "f1", "f2", "f3"])  # fmt: skip
    return INTERVALS + 1


def write_artifact(folder: Path) -> Path:
    """A scikit-learn regression saved with skops, the kind of artifact the registry stores."""
    import numpy as np
    import skops.io
    from sklearn.linear_model import LinearRegression

    x = np.random.default_rng(1).normal([10, 0, 100], [2, 1, 10], size=(100, 3))
    skops.io.dump(LinearRegression().fit(x, x @ [1.0, -1.0, 0.5] + 2.0), folder / "model.skops")
    folder.chmod(0o755)  # a bind mount keeps the mode: the container's user must read it
    (folder / "model.skops").chmod(0o644)
    return folder


def _register_shadow(deployment: Deployment, artifacts: Path, result: Result) -> None:
    """Register the artifact as a version and shadow it, as docs/deploy.md says registry changes run
    (as the warehouse's owner, in airflow-init's container): its artifact is stored under the storage
    root, and every worker then reads it through the URI the registry records."""
    run = [
        "run",
        "--rm",
        "-v",
        f"{artifacts}:/artifacts:ro",
        "--entrypoint",
        "etlml",
        "airflow-init",
        "models",
    ]
    deployment.compose(*run, "register", SHADOW, "--kind", "sklearn", "--artifact", "/artifacts/model.skops",
                       "--stats", json.dumps(SHADOW_STATS))  # fmt: skip
    deployment.compose(*run, "shadow", SHADOW)
    result.artifact_uri = deployment.sql(
        f"SELECT artifact_uri FROM model_versions WHERE model_version = '{SHADOW}'"
    )


def _land(deployment: Deployment, folder: Path) -> None:
    """Put the files where the deployment's pipeline reads them: the shared landing volume, or the
    S3 server when the workers share no disk."""
    api_server = next(
        c["Names"] for c in deployment.containers(all_states=False) if "apiserver" in c["Names"]
    )
    if "docker-compose.workers.yml" in deployment.compose_files:
        # a new folder in the API server's container (its own disk), then uploaded from there
        staged = "/opt/airflow/landing-upload"
        deployment.engine.docker("cp", str(folder), f"{api_server}:{staged}")
        deployment.compose("exec", "-T", "airflow-apiserver", "python", "-c", UPLOAD, staged)
    else:
        deployment.engine.docker("cp", f"{folder}/.", f"{api_server}:/opt/airflow/landing")


def _pages(api: localstack.AirflowApi, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        body = api._call("GET", path, params={"limit": 100, "offset": len(found), **params})
        found.extend(body[key])
        if len(found) >= body["total_entries"] or not body[key]:
            return found


def _backfill_runs(api: localstack.AirflowApi) -> list[dict[str, Any]]:
    runs = _pages(api, f"/api/v2/dags/{PIPELINE}/dagRuns", "dag_runs")
    return [r for r in runs if r["run_type"] == "backfill"]


def _running_on(api: localstack.AirflowApi, hostname: str) -> list[dict[str, Any]]:
    tis = _pages(api, f"/api/v2/dags/{PIPELINE}/dagRuns/~/taskInstances", "task_instances", state="running")
    return [ti for ti in tis if ti.get("hostname") == hostname]


def _kill_a_worker(deployment: Deployment, api: localstack.AirflowApi, result: Result) -> None:
    """``docker kill`` the second worker once it runs two or more of the pipeline's steps (the sensor
    ends in a moment): what has not finished by the kill is lost with the container."""
    workers = sorted(
        c["Names"] for c in deployment.containers(all_states=False) if "airflow-worker" in c["Names"]
    )
    assert len(workers) == 2, workers
    victim = workers[1]
    hostname = deployment.engine.docker("inspect", "-f", "{{.Config.Hostname}}", victim).stdout.strip()
    running = [ti for ti in _running_on(api, hostname) if ti["task_id"] != "wait_for_window"]
    if len(running) < 2:
        return
    deployment.engine.docker("kill", victim)
    result.killed = {
        "container": victim,
        "hostname": hostname,
        "at": datetime.now(UTC).isoformat(),
        "tasks": [(ti["dag_run_id"], ti["task_id"], ti["map_index"], ti["try_number"]) for ti in running],
    }


def _wait_for_the_day(deployment: Deployment, api: localstack.AirflowApi, result: Result, kill: bool) -> None:
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    while time.monotonic() < deadline:
        runs = _backfill_runs(api)
        states = Counter(r["state"] for r in runs)
        if kill and not result.killed and states["success"] >= KILL_AFTER_RUNS:
            _kill_a_worker(deployment, api, result)
        finished = len(runs) == INTERVALS and states["success"] + states["failed"] == INTERVALS
        if finished and api.run_state(PIPELINE, result.manual_run) in localstack.TERMINAL_STATES:
            result.backfill_states = states
            starts = [datetime.fromisoformat(r["start_date"]) for r in runs]
            ends = [datetime.fromisoformat(r["end_date"]) for r in runs]
            minutes = (max(ends) - min(starts)).total_seconds() / 60
            result.backfill_minutes = round(minutes, 2)
            result.runs_per_minute = round(INTERVALS / minutes, 2)
            if result.killed:  # the rate while both workers were up
                at = datetime.fromisoformat(result.killed["at"])
                before = sum(end <= at for end in ends) / ((at - min(starts)).total_seconds() / 60)
                result.killed["runs_per_minute_before"] = round(before, 2)
            return
        time.sleep(1 if kill and not result.killed and states["success"] >= KILL_AFTER_RUNS else 5)
    raise AssertionError(
        f"the backfill did not finish in {BACKFILL_TIMEOUT} s: {Counter(r['state'] for r in runs)}"
    )


def _tries(api: localstack.AirflowApi, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
    path = f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
    return list(api._call("GET", path)["task_instances"])


def _after_the_kill(api: localstack.AirflowApi, result: Result) -> None:
    """Every try of each task instance of the day that needed more than one: where it ran, how it ended."""
    retried = []
    for run_id, task_id, map_index, _ in result.retried:
        tries = sorted(_tries(api, run_id, task_id, map_index), key=lambda t: t["try_number"])
        retried.append({
            "task": [run_id, task_id, map_index],
            "tries": [(t["try_number"], t["state"], t["hostname"]) for t in tries],
            "succeeded_at": tries[-1]["end_date"],
        })  # fmt: skip
    result.killed["retried"] = retried
    ends = [datetime.fromisoformat(r["succeeded_at"]) for r in retried if r["succeeded_at"]]
    if ends:
        result.killed["loss_to_last_retry_success_s"] = round(
            (max(ends) - datetime.fromisoformat(result.killed["at"])).total_seconds(), 1
        )


def _read_logs(api: localstack.AirflowApi, tis: list[dict[str, Any]], result: Result) -> None:
    """One finished task's log per worker, as the UI reads it."""
    seen: set[str] = set()
    for ti in tis:
        host = ti.get("hostname") or ""
        if ti["state"] != "success" or host in seen:
            continue
        seen.add(host)
        path = (f"/api/v2/dags/{PIPELINE}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/logs/"
                f"{ti['try_number']}")  # fmt: skip
        body = api._call("GET", path, params={"map_index": ti["map_index"], "full_content": "true"},
                         headers={"Accept": "application/json"})  # fmt: skip
        text = json.dumps(body.get("content"))
        result.logs_read[host] = len(text) if ti["task_id"] in text or "Task" in text else 0


def _browse(deployment: Deployment, result: Result) -> None:
    """Log in through Chromium and read the manual run's interval on the etlml page."""
    from playwright.sync_api import expect

    from tests.e2e.browser import chromium_page

    base = deployment.extra_env["AIRFLOW_BASE_URL"]
    with chromium_page() as page:
        page.goto(f"{base}/etlml/")
        expect(page).to_have_url(re.compile(r"/auth/login"))
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", deployment.env_file()["_AIRFLOW_WWW_USER_PASSWORD"])
        page.get_by_role("button", name="Sign in").click()
        expect(page).not_to_have_url(re.compile(r"/auth/login"), timeout=30_000)
        page.goto(f"{base}/etlml/")
        expect(page.locator("h1")).to_have_text("etlml")
        cells = ", ".join(
            f"r.querySelector('[data-{name}]').dataset.{name}" for name in ("events", "rejected")
        )
        rows = page.eval_on_selector_all(
            "tr.interval", f"rows => rows.map(r => [r.dataset.intervalStart, {cells}])"
        )
        result.page = {"intervals": {start: (int(n), int(rejected)) for start, n, rejected in rows}}
        shots = ROOT / "test-output"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "compose-etlml-page.png"), full_page=True)


def run_day(
    deployment: Deployment, landing: Path, artifacts: Path, *, kill_a_worker: bool, browse: bool
) -> Result:
    """Start the deployment, backfill the day (and trigger one run), check, then ``down -v``."""
    result = Result()
    try:
        api = _start(deployment, result)
        _land(deployment, landing)
        api.wait_for_dag(INIT, timeout=300)
        api.unpause(INIT)
        assert api.wait_for_run(INIT, api.trigger(INIT), timeout=300) == "success"
        _register_shadow(deployment, artifacts, result)
        api.wait_for_dag(PIPELINE)
        # created while the pipeline is paused: the scheduler then starts after the day, not inside it
        last = DAY_END - timedelta(minutes=10)
        deployment.compose(
            "exec", "-T", "airflow-scheduler", "airflow", "backfill", "create", "--dag-id", PIPELINE,
            "--from-date", DAY_START.isoformat(), "--to-date", last.isoformat(),
        )  # fmt: skip
        # a manual run scores the interval that ends at its logical date: the one after the day, complete
        after = DAY_END + timedelta(minutes=10)
        result.manual_run = api.trigger(PIPELINE, logical_date=after)
        api.unpause(PIPELINE)
        _wait_for_the_day(deployment, api, result, kill_a_worker)
        tis = _pages(api, f"/api/v2/dags/{PIPELINE}/dagRuns/~/taskInstances", "task_instances")
        day_runs = {r["dag_run_id"] for r in _backfill_runs(api)}
        result.split = Counter(ti["hostname"] for ti in tis if ti["dag_run_id"] in day_runs)
        result.retried = sorted(
            (ti["dag_run_id"], ti["task_id"], ti["map_index"], ti["try_number"])
            for ti in tis
            if ti["dag_run_id"] in day_runs and ti["try_number"] > 1
        )
        if result.killed:
            _after_the_kill(api, result)
        _read_logs(api, [ti for ti in tis if ti["dag_run_id"] in day_runs], result)
        result.manual_run = f"{result.manual_run}: {api.run_state(PIPELINE, result.manual_run)}"
        result.digests = {table: deployment.sql(query) for table, query in DIGESTS.items()}
        counts = deployment.sql(COUNTS).split("|")
        result.audits = tuple(int(c or 0) for c in counts)  # type: ignore[assignment]
        result.orphans = int(deployment.sql(ORPHANS))
        if browse:
            _browse(deployment, result)
    finally:
        deployment.down()
        result.left_behind = deployment.leftovers()
    return result
