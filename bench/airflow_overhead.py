"""What Airflow adds to a run of ``10_etl_ml_pipeline`` under a real scheduler.

``bench/bench.py`` times the pipeline's steps in one process. Under Airflow every step is a task
instance that is scheduled, queued, handed to the executor, run in a fresh task process that parses the
DAG file and imports the library, and reported back before the next one can start. This script measures
that overhead on a throwaway local stack started the way ``scripts/demo.py`` and the end-to-end tests
start theirs (``scripts/localstack.py``: a role and two databases with unique names, an own AIRFLOW_HOME and
free port, ``airflow standalone`` on LocalExecutor in its own process group) and removes it afterwards:
process group stopped, both databases dropped, AIRFLOW_HOME deleted.

Measured:

* DAG parse cost: each file of ``dags/`` is parsed with ``DagBag`` in a fresh interpreter that has
  already imported Airflow and ``DagBag``. ``parse_s`` is that first parse (it still imports whatever the
  file needs beyond that); ``reparse_s`` the median of three more parses in the same interpreter (the
  file's own cost: close to what the DAG processor pays per refresh, since it pre-imports a file's
  Airflow modules before forking). This runs before the stack starts, with the CPU to itself. The same
  way, ``task_import_s`` times ``import etlml.steps.extract`` after Airflow's task runner: every task process
  pays it inside its step, since the tasks import the library lazily.
* ``--runs`` runs (default 2), one after the other, triggered through the REST API with
  ``conf={"simulated_events": --events}`` and the DAG's other params at their defaults, each for its own
  10-minute data interval: the last ones closed when the script starts, the stack's ``ETLML_START_DATE``
  set to the first of them (:func:`run_dates`; both from the clock, so it runs on any day). The first run
  after start-up is cold (the execution API's first calls, the first task processes); the headline is
  the last run, which is warm. Scheduled runs are off (``[scheduler] use_job_schedule = False``), so
  no scheduled run queues before or competes with the measured ones.

From ``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances`` (every task instance; a mapped task
has one per ``map_index`` >= 0), the run itself and the DAG's structure (``GET .../tasks``):

* ``first_start_to_last_end_s``: the first task instance's ``start_date`` to the last ``end_date``;
  ``run_s``: the run's ``start_date`` to ``end_date`` (adds the scheduler starting the run's first task
  and noticing the last one finished).
* per task instance: ``ready`` -> ``scheduled_when`` -> ``queued_when`` -> ``start_date`` ->
  ``end_date``, where ``ready`` is the latest ``end_date`` among the instances of its upstream tasks
  (the run's ``start_date`` for a root task); ``ready`` -> ``start_date`` is the handoff, the whole
  orchestration cost of one hop.
* the critical path: from the instance that ended last, back through the upstream instance that ended
  last. Along it, ``first_start_to_last_end_s`` = the instances' durations + the handoffs between them.
* inside each task instance, from its structured log (``GET .../taskInstances/{task_id}/logs/{try}``,
  markers of Airflow 3's task runner): ``spawn`` = ``start_date`` -> "::group::Pre Execute" (the task
  process exists); ``startup`` = that -> the "::endgroup::" after which the callable is called (startup
  message from the supervisor, DAG bundle, DAG file parse, of which ``parse`` = "Filling up the DagBag"
  -> "Worker startup parse complete", context); ``step`` = that -> "Done. Returned value ..." or, for a
  classic operator that logs no return value, the runner's "::group::Post Execute" (the
  ``etlml.steps`` function, including its import in this fresh process, and the TaskFlow wrapper);
  ``finish`` = that -> ``end_date`` (XCom push, state report). Log timestamps and the API's dates come
  from the same host clock. Where a marker is missing the split shows "-" and the summary keeps what
  the REST dates alone give (durations and handoffs).

Prints tables; the last line is ``AIRFLOW first_start_to_last_end_s=... run_s=... parse_s=...`` (last
run; ``parse_s`` of the pipeline's DAG file) for the main benchmark to grep. ``--json PATH`` writes every
number, with the API's raw run and task-instance records. ``--conf`` adds run conf (e.g. a smaller
``shard_size``, to measure the mapped tasks' fan-out); ``--dags`` measures another DAG folder that
defines the same DAG id. The machine should be otherwise idle (a warning says when the load average is
high). If a run fails, the script exits 1 with the task states, and Airflow's logs are copied to a
temporary folder it names (``--keep-logs DIR`` copies them on success too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the local stack of the demo and the e2e tests: scripts/localstack.py

from scripts import localstack  # noqa: E402

PIPELINE = "10_etl_ml_pipeline"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ETLML = str(Path(sys.executable).with_name("etlml"))
ADMIN_DSN = os.environ.get("ETLML_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
INTERVAL = timedelta(minutes=10)
# The callable returned: TaskFlow logs the first; a classic operator (the window sensor) only the
# runner's second.
RETURNED = ("Done. Returned value", "::group::Post Execute")
PAGE = 100  # the API's default maximum page size
RUN_TIMEOUT_S = 900.0
EARLIEST = datetime.min.replace(tzinfo=UTC)

# Run in a fresh interpreter per DAG file; prints one line "RESULT <json>".
PARSE_CODE = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
import airflow
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter() - t0
path, repeats = sys.argv[1], int(sys.argv[2])
times, bag = [], None
for _ in range(1 + repeats):
    start = time.perf_counter()
    bag = DagBag(dag_folder=path)
    times.append(time.perf_counter() - start)
print("RESULT " + json.dumps({
    "airflow_import_s": imported,
    "parse_s": times[0],
    "reparse_s": statistics.median(times[1:]),
    "dags": sorted(bag.dag_ids),
    "tasks": sum(len(d.tasks) for d in bag.dags.values()),
    "import_errors": {str(k): str(v)[-3000:] for k, v in bag.import_errors.items()},
}))
"""

# What a task process has loaded before its callable runs, then the library the tasks import lazily.
TASK_IMPORT_CODE = r"""
import json, sys, time
import airflow.sdk.execution_time.task_runner
start = time.perf_counter()
import etlml.steps.extract
print("RESULT " + json.dumps({"task_import_s": time.perf_counter() - start}))
"""


def run_dates(now: datetime, runs: int) -> tuple[datetime, list[datetime]]:
    """The stack's ``ETLML_START_DATE`` and the logical dates of ``runs`` runs, from ``now``: the last
    ``runs`` intervals that have closed, in order, the start date the first one's start. A run
    triggered with logical date T gets the data interval that ends at T, and has task instances only
    if that interval starts at or after the DAG's start date: both are set here, together."""
    latest_end = localstack.current_interval_start(now, int(INTERVAL.total_seconds()) // 60)
    first_start = latest_end - runs * INTERVAL
    return first_start, [first_start + (i + 1) * INTERVAL for i in range(runs)]


class BenchError(RuntimeError):
    """The benchmark could not measure what it should; the message says why and where to look."""


@dataclass
class FileParse:
    file: str
    parse_s: float
    reparse_s: float
    airflow_import_s: float
    dags: list[str]
    tasks: int


@dataclass
class TaskTiming:
    """One task instance; ``None`` where the API or the log did not give both ends of a span."""

    task_id: str
    map_index: int
    try_number: int
    state: str
    start: datetime | None
    end: datetime | None
    duration_s: float | None
    scheduled: datetime | None
    queued: datetime | None
    upstream: list[str] = field(default_factory=list)
    ready: datetime | None = None  # latest end of the upstream tasks' instances, or the run's start
    spawn_s: float | None = None
    startup_s: float | None = None
    parse_s: float | None = None
    step_s: float | None = None
    finish_s: float | None = None

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    @property
    def ran(self) -> bool:
        return self.start is not None and self.end is not None

    @property
    def ready_to_scheduled_s(self) -> float | None:
        return seconds(self.ready, self.scheduled)

    @property
    def scheduled_to_queued_s(self) -> float | None:
        return seconds(self.scheduled, self.queued)

    @property
    def queued_to_start_s(self) -> float | None:
        return seconds(self.queued, self.start)

    @property
    def handoff_s(self) -> float | None:
        return seconds(self.ready, self.start)

    def as_json(self) -> dict[str, Any]:
        out = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}
        for name in ("ready_to_scheduled_s", "scheduled_to_queued_s", "queued_to_start_s", "handoff_s"):
            out[name] = getattr(self, name)
        return out


@dataclass
class RunTiming:
    label: str
    run_id: str
    conf: dict[str, Any]
    data_interval: tuple[str, str]
    trigger_to_done_s: float
    queued_at_to_start_s: float | None
    run_s: float
    first_start_to_last_end_s: float
    tasks: list[TaskTiming]
    critical_path: list[str]
    path_in_tasks_s: float
    path_handoffs_s: float
    path_step_s: float | None
    sum_queued_to_start_s: float
    sum_handoffs_s: float
    sum_durations_s: float
    retried: list[str]
    api_run: dict[str, Any]
    api_task_instances: list[dict[str, Any]]

    @property
    def overhead_s(self) -> float | None:
        """Critical-path time outside the steps' callables (handoffs, spawn, startup, finish)."""
        return None if self.path_step_s is None else self.first_start_to_last_end_s - self.path_step_s

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tasks"] = [t.as_json() for t in self.tasks]
        out["overhead_s"] = self.overhead_s
        return out


# --- helpers ---------------------------------------------------------------------------------------


def when(value: Any) -> datetime | None:
    """An API or log timestamp as an aware datetime (``None`` stays ``None``)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def get_json(api: localstack.AirflowApi, path: str, **params: Any) -> Any:
    response = api.client.get(path, params=params)
    if response.is_error:
        raise BenchError(f"GET {path} -> {response.status_code}: {response.text[:500]}")
    return response.json()


def fmt(value: float | None, width: int = 8, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def run_code(code: str, args: list[str], env: dict[str, str], what: str) -> dict[str, Any]:
    """Run ``python -c code args`` with the stack's environment; return its ``RESULT`` JSON line."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


# --- parse and import cost -------------------------------------------------------------------------


def measure_parse(env: dict[str, str], dags: Path, repeats: int = 3) -> list[FileParse]:
    """DagBag on each DAG file, each in a fresh interpreter with Airflow already imported."""
    results = []
    for path in sorted(dags.glob("*.py")):
        out = run_code(PARSE_CODE, [str(path), str(repeats)], env, f"parsing {path.name}")
        if out["import_errors"]:
            raise BenchError(f"{path.name} does not import:\n" + "\n".join(out["import_errors"].values()))
        results.append(
            FileParse(
                file=path.name,
                parse_s=out["parse_s"],
                reparse_s=out["reparse_s"],
                airflow_import_s=out["airflow_import_s"],
                dags=out["dags"],
                tasks=out["tasks"],
            )
        )
    return results


def pipeline_file(parses: list[FileParse]) -> FileParse:
    for parse in parses:
        if PIPELINE in parse.dags:
            return parse
    raise BenchError(f"no DAG file defines {PIPELINE}: {[(p.file, p.dags) for p in parses]}")


# --- one run ---------------------------------------------------------------------------------------


def dag_params(api: localstack.AirflowApi) -> dict[str, Any]:
    """The pipeline's params and their defaults (``GET /api/v2/dags/{dag_id}/details``)."""
    params = get_json(api, f"/api/v2/dags/{PIPELINE}/details").get("params") or {}
    return {name: p.get("value") if isinstance(p, dict) else p for name, p in params.items()}


def upstream_map(api: localstack.AirflowApi) -> dict[str, list[str]]:
    """task_id -> its direct upstream task ids (``GET /api/v2/dags/{dag_id}/tasks``)."""
    tasks = get_json(api, f"/api/v2/dags/{PIPELINE}/tasks")["tasks"]
    upstream: dict[str, list[str]] = {t["task_id"]: [] for t in tasks}
    for task in tasks:
        for down in task.get("downstream_task_ids") or []:
            upstream.setdefault(down, []).append(task["task_id"])
    return upstream


def task_instances(api: localstack.AirflowApi, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run, mapped ones one per ``map_index``, over all pages."""
    path = f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances"
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:  # offset pages in a stable order (the instance's id); the total is exact
        body = get_json(api, path, limit=PAGE, offset=offset, order_by="id")
        page = list(body["task_instances"])
        found.update((str(ti["id"]), ti) for ti in page)
        offset += len(page)
        if not page or offset >= int(body.get("total_entries") or 0):
            return list(found.values())


def log_marks(api: localstack.AirflowApi, run_id: str, ti: dict[str, Any]) -> dict[str, datetime]:
    """Timestamps of the task runner's markers in the structured log of the instance's last try."""
    task_id, try_number = ti["task_id"], ti["try_number"]
    response = api.client.get(
        f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
        params={"map_index": ti["map_index"], "full_content": "true"},
        headers={"Accept": "application/json"},
    )
    if response.is_error:
        return {}
    marks: dict[str, datetime] = {}
    for record in response.json().get("content") or []:
        stamp = when(record.get("timestamp")) if isinstance(record, dict) else None
        if stamp is None:
            continue
        event = str(record.get("event", ""))
        if event == "::group::Pre Execute":
            marks.setdefault("pre", stamp)
        elif event.startswith("Filling up the DagBag") and "called" not in marks:
            marks.setdefault("parse", stamp)
        elif event.startswith("Worker startup parse complete") and "called" not in marks:
            marks.setdefault("parsed", stamp)
        elif event == "::endgroup::" and "pre" in marks:
            marks.setdefault("called", stamp)
        elif (
            event.startswith("Done. Returned value") or event == "::group::Post Execute"
        ) and "called" in marks:
            marks.setdefault("returned", stamp)  # a classic operator (the window sensor) logs only the second
    return marks


def critical_path(timings: list[TaskTiming]) -> list[TaskTiming]:
    """From the instance that ended last, back through the upstream instance that ended last."""
    ran = [t for t in timings if t.ran]
    by_task: dict[str, list[TaskTiming]] = {}
    for t in ran:
        by_task.setdefault(t.task_id, []).append(t)
    path = [max(ran, key=lambda t: t.end or EARLIEST)]
    while ups := [u for task_id in path[-1].upstream for u in by_task.get(task_id, [])]:
        path.append(max(ups, key=lambda t: t.end or EARLIEST))
    return path[::-1]


def timing_of(
    api: localstack.AirflowApi, run_id: str, ti: dict[str, Any], upstream: dict[str, list[str]]
) -> TaskTiming:
    timing = TaskTiming(
        task_id=ti["task_id"],
        map_index=int(ti["map_index"]),
        try_number=int(ti["try_number"]),
        state=str(ti["state"]),
        start=when(ti.get("start_date")),
        end=when(ti.get("end_date")),
        duration_s=ti.get("duration"),
        scheduled=when(ti.get("scheduled_when")),
        queued=when(ti.get("queued_when")),
        upstream=upstream.get(ti["task_id"], []),
    )
    if timing.ran and timing.try_number > 0:
        marks = log_marks(api, run_id, ti)
        timing.spawn_s = seconds(timing.start, marks.get("pre"))
        timing.startup_s = seconds(marks.get("pre"), marks.get("called"))
        timing.parse_s = seconds(marks.get("parse"), marks.get("parsed"))
        timing.step_s = seconds(marks.get("called"), marks.get("returned"))
        timing.finish_s = seconds(marks.get("returned"), timing.end)
    return timing


def measure_run(
    api: localstack.AirflowApi, label: str, run_id: str, upstream: dict[str, list[str]], waited: float
) -> RunTiming:
    run = get_json(api, f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}")
    run_start, run_end = when(run.get("start_date")), when(run.get("end_date"))
    raw = task_instances(api, run_id)
    timings = [timing_of(api, run_id, ti, upstream) for ti in raw]
    ran = [t for t in timings if t.ran]
    if run_start is None or run_end is None or not ran:
        raise BenchError(f"run {run_id} lacks start/end dates: {run}; task instances {raw}")
    ends: dict[str, datetime] = {}
    for t in ran:
        ends[t.task_id] = max(ends.get(t.task_id, EARLIEST), t.end or EARLIEST)
    for t in ran:
        t.ready = max((ends[u] for u in t.upstream if u in ends), default=run_start)
    timings.sort(key=lambda t: (t.start or datetime.max.replace(tzinfo=UTC), t.task_id, t.map_index))
    first = min(t.start or run_start for t in ran)
    last = max(t.end or run_end for t in ran)
    wall = (last - first).total_seconds()
    path = critical_path(timings)
    in_tasks = sum(t.duration_s or 0.0 for t in path)
    steps = [t.step_s for t in path]
    return RunTiming(
        label=label,
        run_id=run_id,
        conf=dict(run.get("conf") or {}),
        data_interval=(str(run.get("data_interval_start")), str(run.get("data_interval_end"))),
        trigger_to_done_s=waited,
        queued_at_to_start_s=seconds(when(run.get("queued_at")), run_start),
        run_s=(run_end - run_start).total_seconds(),
        first_start_to_last_end_s=wall,
        tasks=timings,
        critical_path=[t.label for t in path],
        path_in_tasks_s=in_tasks,
        path_handoffs_s=wall - in_tasks,
        path_step_s=None if None in steps else sum(s or 0.0 for s in steps),
        sum_queued_to_start_s=sum(t.queued_to_start_s or 0.0 for t in ran),
        sum_handoffs_s=sum(t.handoff_s or 0.0 for t in ran),
        sum_durations_s=sum(t.duration_s or 0.0 for t in ran),
        retried=[f"{t.label} (try {t.try_number})" for t in ran if t.try_number > 1],
        api_run=run,
        api_task_instances=raw,
    )


def trigger_and_wait(
    api: localstack.AirflowApi, logical_date: datetime, conf: dict[str, Any]
) -> tuple[str, float]:
    started = time.monotonic()
    run_id = api.trigger(PIPELINE, logical_date=logical_date, conf=conf)
    state = api.wait_for_run(PIPELINE, run_id, timeout=RUN_TIMEOUT_S)
    if state != "success":
        states = {
            (ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti["state"]
            for ti in task_instances(api, run_id)
        }
        raise BenchError(
            f"run {run_id} ended {state}; task states {states}; "
            f"its task logs are in logs/dag_id={PIPELINE}/run_id={run_id}/ of the copy named above"
        )
    return run_id, time.monotonic() - started


# --- report ----------------------------------------------------------------------------------------


def print_parse(parses: list[FileParse], task_import_s: float) -> None:
    print("\nDAG parse cost: DagBag in a fresh interpreter with Airflow imported (seconds)")
    print(f"  {'file':<28}{'dags':>5}{'tasks':>6}{'first':>9}{'again':>9}{'import airflow':>16}")
    for p in parses:
        print(
            f"  {p.file:<28}{len(p.dags):>5}{p.tasks:>6}{fmt(p.parse_s, 9, 3)}{fmt(p.reparse_s, 9, 3)}"
            f"{fmt(p.airflow_import_s, 16)}"
        )
    print(
        f"  import etlml.steps.extract after Airflow's task runner (each task process): {task_import_s:.3f} s"
    )


def print_run(run: RunTiming, task_import_s: float) -> None:
    print(f"\n{run.label}: {run.run_id}, data interval {run.data_interval[0]} .. {run.data_interval[1]}")
    print(f"  conf {json.dumps(run.conf)}; trigger -> seen done {run.trigger_to_done_s:.2f} s")
    print("  seconds      |------- handoff: ready -> start -------|          |---------- inside ----------|")
    print(
        f"  {'task instance':<22}{'try':>4}{'rdy>sch':>9}{'sch>que':>9}{'que>sta':>9}{'handoff':>9}"
        f"{'duration':>10}{'spawn':>8}{'startup':>8}{'parse':>8}{'step':>8}{'finish':>8}"
    )
    for t in run.tasks:
        print(
            f"  {t.label:<22}{t.try_number:>4}{fmt(t.ready_to_scheduled_s, 9)}"
            f"{fmt(t.scheduled_to_queued_s, 9)}{fmt(t.queued_to_start_s, 9)}{fmt(t.handoff_s, 9)}"
            f"{fmt(t.duration_s, 10)}{fmt(t.spawn_s)}"
            f"{fmt(t.startup_s)}{fmt(t.parse_s)}{fmt(t.step_s)}{fmt(t.finish_s)}"
            + ("" if t.state == "success" else f"  ({t.state})")
        )
    n = len(run.critical_path)
    lines = [
        ("run queued -> running", run.queued_at_to_start_s),
        ("run start -> end (run_s)", run.run_s),
        ("first task start -> last task end", run.first_start_to_last_end_s),
        (f"  = {n} task instances on the critical path", run.path_in_tasks_s),
        ("      their steps (callable called -> returned)", run.path_step_s),
        (f"        of which import etlml.steps.extract, est. {n} x {task_import_s:.2f}", n * task_import_s),
        ("  + handoffs between them", run.path_handoffs_s),
        ("Airflow overhead on the path (wall - steps)", run.overhead_s),
        ("sum of queued -> start, all instances", run.sum_queued_to_start_s),
        ("sum of handoffs, all instances", run.sum_handoffs_s),
    ]
    for text, value in lines:
        print(f"  {text:<56}{fmt(value)} s")
    print(f"  critical path: {' -> '.join(run.critical_path)}")
    if run.retried:
        print(f"  NOTE: retried, its timings include the retry delay: {', '.join(run.retried)}")


# --- the stack -------------------------------------------------------------------------------------


def copy_logs(home: Path, standalone_log: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    if (home / "logs").is_dir():
        shutil.copytree(home / "logs", dest / "logs", dirs_exist_ok=True)
    if standalone_log.exists():
        shutil.copy2(standalone_log, dest / standalone_log.name)
    return dest


def stop_stack(proc: subprocess.Popen[bytes] | None, home: Path) -> list[str]:
    """Stop the process group, then anything else still running with this AIRFLOW_HOME."""
    problems = []
    if proc is not None:
        localstack.stop(proc)
        if localstack.group_alive(proc.pid):
            problems.append(f"process group {proc.pid} still alive after SIGKILL")
    strays = localstack.processes_with_env("AIRFLOW_HOME", str(home))
    for pid in strays:  # processes of this stack only: its AIRFLOW_HOME is a fresh temporary folder
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    if strays:
        problems.append(f"killed processes of this stack that had left its process group: {strays}")
    return problems


def measure_runs(
    api: localstack.AirflowApi, args: argparse.Namespace, logical_dates: list[datetime]
) -> tuple[dict[str, Any], list[RunTiming]]:
    api.wait_for_dag(PIPELINE, timeout=180)
    defaults = dag_params(api)
    if "simulated_events" not in defaults:
        raise BenchError(f"{PIPELINE} has no simulated_events param any more: {defaults}")
    conf = {"simulated_events": args.events, **args.conf}
    print(f"stack: {PIPELINE} params (defaults) {json.dumps(defaults)}; conf {json.dumps(conf)}")
    upstream = upstream_map(api)
    api.unpause(PIPELINE)
    runs = []
    for i, logical_date in enumerate(logical_dates):
        label = f"run {i + 1} ({'cold: first after start-up' if i == 0 else 'warm'})"
        print(f"{label}: triggered ...", flush=True)
        run_id, waited = trigger_and_wait(api, logical_date, conf)
        runs.append(measure_run(api, label, run_id, upstream, waited))
    return defaults, runs


def run_benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    dbs = localstack.Databases(
        admin_dsn=args.admin_dsn,
        role="etlml_bench",
        password="etlml_bench",  # noqa: S106 - throwaway local stack
        metadata_db=f"etlml_bench_af_meta_{suffix}",
        warehouse_db=f"etlml_bench_af_wh_{suffix}",
    )
    home, standalone_log, port = work / "airflow", work / "airflow-standalone.log", localstack.free_port()
    proc: subprocess.Popen[bytes] | None = None
    failed = True
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cpus:
        print(
            f"WARNING: load average {load:.2f} on {cpus} CPUs before start: other work inflates the numbers"
        )
    try:
        dbs.ensure()
        start_date, logical_dates = run_dates(datetime.now(UTC), args.runs)
        extra = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", "ETLML_START_DATE": start_date.isoformat()}
        env = localstack.airflow_env(home, dbs, args.dags, port, extra=extra)
        print(f"stack: AIRFLOW_HOME {home}, port {port}, databases {dbs.metadata_db}, {dbs.warehouse_db}")
        for command in ([AIRFLOW, "db", "migrate"], [ETLML, "db", "migrate"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                output = done.stdout[-2000:] + done.stderr[-2000:]
                raise BenchError(f"`{' '.join(command[-3:])}` failed:\n{output}")

        parses = measure_parse(env, args.dags)
        task_import_s = float(
            run_code(TASK_IMPORT_CODE, [], env, "import etlml.steps.extract")["task_import_s"]
        )
        print_parse(parses, task_import_s)
        parse = pipeline_file(parses)

        print(f"\nstack: starting `airflow standalone`, output in {standalone_log}", flush=True)
        started = time.monotonic()
        standalone = localstack.Component.start(
            "airflow standalone", [AIRFLOW, "standalone"], env, standalone_log
        )
        proc = standalone.proc
        api = localstack.AirflowApi(f"http://127.0.0.1:{port}")
        api.wait_healthy(timeout=240, watch=[standalone])
        api.login()
        print(f"stack: healthy after {time.monotonic() - started:.1f} s", flush=True)
        defaults, runs = measure_runs(api, args, logical_dates)
        for run in runs:
            print_run(run, task_import_s)
        failed = False
    finally:
        problems = stop_stack(proc, home)
        if failed or args.keep_logs:
            dest = args.keep_logs or Path(tempfile.mkdtemp(prefix="etlml-airflow-overhead-logs-"))
            print(f"stack: Airflow's logs copied to {copy_logs(home, standalone_log, dest)}", file=sys.stderr)
        dbs.drop()
        for problem in problems:
            print(f"stack: {problem}", file=sys.stderr)
    if problems:
        raise BenchError("the stack did not stop cleanly: " + "; ".join(problems))
    return {
        "events": args.events,
        "executor": env["AIRFLOW__CORE__EXECUTOR"],
        "cpus": cpus,
        "loadavg_1min_before": load,
        "params_defaults": defaults,
        "parse": [asdict(p) for p in parses],
        "task_import_s": task_import_s,
        "runs": [run.as_json() for run in runs],
        "headline": {
            "run_id": runs[-1].run_id,
            "first_start_to_last_end_s": runs[-1].first_start_to_last_end_s,
            "run_s": runs[-1].run_s,
            "parse_s": parse.parse_s,
            "reparse_s": parse.reparse_s,
            "overhead_s": runs[-1].overhead_s,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=10_000, help="simulated_events of each run (default 10000)"
    )
    parser.add_argument("--runs", type=int, default=2, help="runs in a row; the last is the headline")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    parser.add_argument("--keep-logs", type=Path, help="copy Airflow's logs here (on failure: a temp dir)")
    parser.add_argument(
        "--conf",
        type=json.loads,
        default={},
        help="more run conf as JSON, e.g. '{\"shard_size\": 2500}' (default: the DAG's defaults)",
    )
    parser.add_argument("--dags", type=Path, default=ROOT / "dags", help="DAG folder (default: dags/)")
    parser.add_argument(
        "--admin-dsn", default=ADMIN_DSN, help="superuser connection that creates and drops the databases"
    )
    args = parser.parse_args()
    if args.events < 1 or args.runs < 1:
        parser.error("--events and --runs must be at least 1")
    if not isinstance(args.conf, dict):
        parser.error("--conf must be a JSON object")
    args.dags = args.dags.resolve()

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the stack

    signal.signal(signal.SIGTERM, terminated)
    work = Path(tempfile.mkdtemp(prefix="etlml-airflow-overhead-"))
    try:
        result = run_benchmark(args, work)
    except (RuntimeError, TimeoutError) as exc:  # BenchError, and localstack's API and start-up errors
        print(f"\nairflow_overhead: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
    head = result["headline"]
    print(
        f"\nAIRFLOW first_start_to_last_end_s={head['first_start_to_last_end_s']:.3f} "
        f"run_s={head['run_s']:.3f} parse_s={head['parse_s']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
