"""`make demo`: a local Airflow with both DAGs unpaused, the pipeline's first run, its predictions, and
the lines to paste to use the `etlml` command on the demo's warehouse.

Local use only: the login is admin/admin, the database role's password is fixed below, and the API
server listens on 127.0.0.1 unless ETLML_DEMO_HOST says otherwise. Ctrl-C stops every process this
script started. `make demo-clean` (``--clean``) also drops the demo's databases and role and deletes
its folder, to start over.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import psycopg

from scripts import localstack

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
INIT, PIPELINE, LABELS = "00_init_schema", "10_etl_ml_pipeline", "15_ingest_labels"
MONITOR = "30_monitor"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
SCHEDULER_GRACE = 90.0  # seconds the scheduler gets to start the latest interval's run by itself
PARSE_TIMEOUT = 180.0  # seconds the DAG processor gets to parse every DAG file once
INTERVAL = timedelta(minutes=10)
QUERY = """SELECT p.event_id, p.model_version, round(p.y_hat::numeric, 4) AS y_hat, p.ts_utc
FROM predictions p ORDER BY p.ts_utc DESC LIMIT 5;"""
FIRST_RUN_COUNTS = """SELECT count(*) FILTER (WHERE d.interval_end = %(end)s), count(*)
FROM predictions p JOIN processed_data d USING (event_id)"""
FIRST_RUN_LATEST = """SELECT p.event_id, p.model_version, round(p.y_hat::numeric, 4) AS y_hat, p.ts_utc
FROM predictions p JOIN processed_data d USING (event_id) WHERE d.interval_end = %(end)s
ORDER BY p.ts_utc DESC LIMIT 5"""


LOCAL_EVENTS = "redis://127.0.0.1:6379/0"
STREAM_SEED_EVENTS = 200


class DemoError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


@dataclass(frozen=True)
class Config:
    """Where the demo runs: bind address, port, the server it creates its databases on, its folder."""

    host: str
    port: int
    admin_dsn: str
    state: Path
    name: str
    clean: bool
    dags: Path = ROOT / "dags"

    def databases(self) -> localstack.Databases:
        return localstack.Databases(
            admin_dsn=self.admin_dsn,
            role=self.name,
            password=self.name,  # local demo only
            metadata_db=f"{self.name}_airflow",
            warehouse_db=f"{self.name}_warehouse",
        )


def parse_config(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clean", action="store_true", help="stop the demo, drop its databases and role")
    parser.add_argument(
        "--state", type=Path, default=ROOT / ".demo", help="the demo's folder (default .demo)"
    )
    parser.add_argument("--name", default="etlml", help="role and database prefix (default etlml)")
    parser.add_argument("--dags", type=Path, default=ROOT / "dags", help="the DAG folder (default dags/)")
    args = parser.parse_args(argv)
    port_text = os.environ.get("ETLML_DEMO_PORT") or "8080"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DemoError(f"ETLML_DEMO_PORT must be a TCP port number (1-65535), got {port_text!r}")
    return Config(
        host=os.environ.get("ETLML_DEMO_HOST") or localstack.LOCAL_HOST,
        port=int(port_text),
        admin_dsn=os.environ.get("ETLML_DEMO_ADMIN_DSN") or "postgresql://postgres@127.0.0.1:5432/postgres",
        state=args.state.resolve(),
        name=args.name,
        clean=args.clean,
        dags=args.dags.resolve(),
    )


def say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def check_before_starting(cfg: Config) -> None:
    """What would otherwise fail later, after minutes: etlml's settings (every one a DAG file or a task
    reads: ``settings.validate``), a demo of these databases that already runs, and the port."""
    from etlml import settings

    settings.validate()  # a SettingsError names the variable
    running = running_demo(cfg)
    if running:
        raise DemoError(
            f"a demo of these databases ({cfg.name}_airflow, {cfg.name}_warehouse) is already running "
            f"(pids {', '.join(map(str, running[:4]))}): use it at "
            f"{localstack.base_url(cfg.host, cfg.port)}, or stop it first: Ctrl-C in its shell, or "
            "`make demo-clean` (which also drops its data)"
        )
    problem = localstack.bind_error(cfg.host, cfg.port)
    if problem is not None and problem.errno == errno.EADDRINUSE:
        raise DemoError(
            f"port {cfg.port} on {cfg.host} is taken by another program; stop it, or choose another "
            f"port: ETLML_DEMO_PORT={cfg.port + 1} make demo"
        )
    if problem is not None:
        raise DemoError(
            f"cannot listen on {cfg.host}:{cfg.port} ({problem}); ETLML_DEMO_HOST must be an address of "
            "this machine (default 127.0.0.1)"
        )


def running_demo(cfg: Config) -> list[int]:
    """The processes of a running demo of ``cfg``'s databases: the process groups its last start
    recorded, and any process (of another checkout too) whose Airflow uses its metadata database."""
    groups = demo_groups(cfg.state)
    users = localstack.processes_with_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", cfg.databases().metadata_url)
    # Airflow's processes only: a shell that sourced .demo/env (and this demo, started from it) has it too
    return groups or [pid for pid in users if b"airflow" in _cmdline(pid, missing=b"")]


def migrate(env: dict[str, str]) -> None:
    """Airflow's metadata DB and the warehouse, migrated; a failure is one line saying why."""
    for command in (["airflow", "db", "migrate"], ["etlml", "db", "migrate"]):
        done = subprocess.run(
            [str(BIN / command[0]), *command[1:]], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()] or ["(no output)"]
            raise DemoError(f"`{' '.join(command)}` failed: {lines[-1].removeprefix('etlml: ')}")


def fresh_logs(state: Path) -> Path:
    """``.demo/logs/`` for this start; the previous start's logs move to ``logs/previous/``."""
    logs, previous = state / "logs", state / "logs" / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for log in logs.glob("*.log"):
        log.rename(previous / log.name)
    return logs


def start_airflow(cfg: Config, env: dict[str, str]) -> list[localstack.Component]:
    """The components, each in a process group of its own, whose ids go to ``.demo/pids``: some
    Airflow processes retitle themselves, which hides their environment, so ``--clean`` finds
    what is left of a demo that was killed by its process groups."""
    logs = fresh_logs(cfg.state)
    say(f"demo: starting Airflow's {', '.join(COMPONENTS)} (logs in {logs}) ...")
    components = [
        localstack.Component.start(name, [str(BIN / "airflow"), name], env, logs / f"{name}.log")
        for name in COMPONENTS
    ]
    (cfg.state / "pids").write_text("".join(f"{c.proc.pid}\n" for c in components))
    return components


def demo_groups(state: Path) -> list[int]:
    """The process groups the last start of the demo in ``state`` recorded that still run Airflow
    (a group whose leader has exited is still ours: its id cannot be reused while it has members)."""
    try:
        recorded = [int(line) for line in (state / "pids").read_text().split()]
    except (OSError, ValueError):
        return []
    return [
        pgid
        for pgid in recorded
        if localstack.group_alive(pgid) and b"airflow" in _cmdline(pgid, missing=b"airflow")
    ]


def _cmdline(pid: int, missing: bytes) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return missing


def first_interval() -> dict[str, str]:
    """``ETLML_START_DATE`` (unless set): the latest closed interval, which the scheduler runs as soon
    as the DAG is unpaused; the pipeline catches up every interval after it, none before."""
    if os.environ.get("ETLML_START_DATE"):
        return {}
    return {"ETLML_START_DATE": (localstack.current_interval_start() - INTERVAL).isoformat()}


def first_pipeline_run(
    api: localstack.AirflowApi, watch: list[localstack.Component], since: datetime
) -> dict[str, Any]:
    """The run of the latest closed interval: the one the scheduler starts when the DAG is unpaused
    (or ran in an earlier start of the demo); triggered only if the scheduler has not started it."""
    deadline = time.monotonic() + SCHEDULER_GRACE
    while time.monotonic() < deadline:
        localstack.check_all(watch)
        for run in api.runs(PIPELINE):
            if datetime.fromisoformat(str(run["data_interval_end"])) >= since:
                return run
        time.sleep(1)
    return api.run(PIPELINE, api.trigger(PIPELINE))


def _at(text: object) -> datetime:
    return datetime.fromisoformat(str(text))


def wait_for_project_dags(
    api: localstack.AirflowApi, watch: list[localstack.Component], started: datetime, dags: Path
) -> None:
    """Until the DAG processor of this start has parsed every file of ``dags/``; an import error Airflow
    reports for one of them stops the demo, naming the file and the error (a DAG that imported in an
    earlier start is still listed, so its presence proves nothing)."""
    # the files Airflow parses: in its safe mode (the default), those that mention both "airflow" and "dag"
    files = {path.name for path in dags.glob("*.py") if {b"airflow", b"dag"} <= _words(path)}
    deadline = time.monotonic() + PARSE_TIMEOUT
    parsed: set[str] = set()
    while time.monotonic() < deadline:
        localstack.check_all(watch)
        errors = {
            Path(e["filename"]).name: e for e in api.import_errors() if Path(e["filename"]).name in files
        }
        fresh = {name: e for name, e in errors.items() if _at(e["timestamp"]) >= started}
        if fresh:
            raise DemoError(import_failure(dags, fresh))
        parsed = {
            Path(d["fileloc"]).name
            for d in api.dags()
            if d.get("last_parsed_time") and _at(d["last_parsed_time"]) >= started
        }
        if files <= parsed:
            return
        time.sleep(1)
    unparsed = {name: errors[name] for name in files - parsed if name in errors}
    if unparsed:
        raise DemoError(import_failure(dags, unparsed))
    raise DemoError(
        f"Airflow's DAG processor did not parse {', '.join(sorted(files - parsed))} within "
        f"{PARSE_TIMEOUT:.0f} s; see the end of dag-processor.log in the demo's logs folder"
    )


def _words(path: Path) -> set[bytes]:
    text = path.read_bytes().lower()
    return {word for word in (b"airflow", b"dag") if word in text}


def import_failure(dags: Path, errors: dict[str, dict[str, Any]]) -> str:
    """One line: the first file that failed to import, its error, and the others' names."""
    name, first = sorted(errors.items())[0]
    lines = [line.strip() for line in str(first["stack_trace"]).splitlines() if line.strip()]
    others = f" (also {', '.join(sorted(errors)[1:])})" if len(errors) > 1 else ""
    return (
        f"Airflow cannot import {dags / name}{others}: {lines[-1] if lines else '(no message)'}; "
        "fix it and start again"
    )


def stream_env() -> dict[str, str]:
    """``ETLML_SOURCE=redis_stream``: the stream's connection for every Airflow process (the local
    Redis unless ``AIRFLOW_CONN_EVENTS`` names another); nothing otherwise."""
    if os.environ.get("ETLML_SOURCE") != "redis_stream":
        return {}
    return {"AIRFLOW_CONN_EVENTS": os.environ.get("AIRFLOW_CONN_EVENTS") or LOCAL_EVENTS}


def seed_stream(env: dict[str, str], end: datetime) -> None:
    """The stream's entries of the interval ending at ``end``, the first the scheduler runs: 200
    simulated events as if they had arrived then, unless the stream already has entries from then on
    (an earlier start of the demo, or a producer)."""
    import redis

    from etlml.ingest.simulator import SimulatedSource
    from etlml.ingest.stream import backfill
    from etlml.interval import Interval

    key = os.environ.get("ETLML_STREAM_KEY") or "etlml:events"
    interval = Interval(end - INTERVAL, end)
    client = redis.Redis.from_url(env["AIRFLOW_CONN_EVENTS"])
    try:
        backfill(client, key, SimulatedSource(20_240_601, STREAM_SEED_EVENTS).events(interval), interval)
    except redis.ResponseError:
        say(f"demo: stream {key} already holds entries from {interval.start:%H:%M} UTC on; read as they are")
    except redis.ConnectionError as exc:
        raise DemoError(
            f"cannot reach the event stream's Redis at {env['AIRFLOW_CONN_EVENTS']}: {exc}"
        ) from None
    else:
        say(f"demo: stream {key} got {STREAM_SEED_EVENTS} events for {interval.start:%H:%M}-{end:%H:%M} UTC")


def run_dags(
    api: localstack.AirflowApi,
    watch: list[localstack.Component],
    started: datetime,
    dags: Path,
    env: dict[str, str] | None = None,
) -> tuple[datetime, datetime | None]:
    """Every DAG file imported by this start, the DAGs unpaused, the schema DAG run, then the
    pipeline's first run; returns the end of its data interval, and when that run was queued if an
    earlier start of the demo made it (``None`` when this start did). With a stream source (``env``
    holds its connection), the first run's interval is seeded first."""
    api.wait_healthy(watch=watch)
    api.login()
    wait_for_project_dags(api, watch, started, dags)
    api.unpause(INIT)
    init_run = api.trigger(INIT)
    if (state := api.wait_for_run(INIT, init_run, watch=watch)) != "success":
        raise DemoError(f"{INIT} ended {state}: {api.task_states(INIT, init_run)}")
    since = localstack.current_interval_start()  # the end of the latest closed interval
    if env and "AIRFLOW_CONN_EVENTS" in env:
        seed_stream(env, since)
    api.unpause(MONITOR)  # accuracy and drift of each interval once its predictions are stored
    api.unpause(PIPELINE)
    api.unpause(LABELS)  # labels of each interval's events, three intervals later
    run = first_pipeline_run(api, watch, since)
    run_id = str(run["dag_run_id"])
    queued = _at(run.get("queued_at") or run.get("start_date") or datetime.now(UTC))
    earlier = queued if queued < started else None
    if earlier is None:
        say(f"demo: {PIPELINE} is scoring the interval that ended at {since:%H:%M} UTC ({run_id}) ...")
    if (state := api.wait_for_run(PIPELINE, run_id, watch=watch)) != "success":
        raise DemoError(f"{PIPELINE} run {run_id} ended {state}: {api.task_states(PIPELINE, run_id)}")
    return _at(api.run(PIPELINE, run_id)["data_interval_end"]), earlier


def show_predictions(dbs: localstack.Databases, interval_end: datetime, earlier: datetime | None) -> None:
    """The predictions of the first run's interval (the scheduler may have scored a later one too);
    when an earlier start of the demo scored it, said so plainly, with when this start scores anew."""
    interval = {"end": interval_end}
    with psycopg.connect(dbs.warehouse_url) as conn:
        count, total = conn.execute(FIRST_RUN_COUNTS, interval).fetchone() or (0, 0)
        rows = conn.execute(FIRST_RUN_LATEST, interval).fetchall()
    window = f"{interval_end - INTERVAL:%H:%M}-{interval_end:%H:%M} UTC"
    if earlier is None:
        say(f"\ndemo: {count} predictions stored for {window} ({total} in all); the latest:")
    else:
        say(
            f"\ndemo: nothing new yet: an earlier start of this demo scored {window} (run queued at "
            f"{earlier:%H:%M} UTC); this start's first run scores the interval that ends at "
            f"{interval_end + INTERVAL:%H:%M} UTC. Stored then, not now: {count} predictions for {window} "
            f"({total} in all); the latest:"
        )
    for row in rows:
        say("    " + "  ".join(map(str, row)))


def free_version(dbs: localstack.Databases) -> str:
    """The first of v2, v3, ... not registered yet: what the demo prints to register works every time."""
    with psycopg.connect(dbs.warehouse_url) as conn:
        taken = {str(row[0]) for row in conn.execute("SELECT model_version FROM model_versions")}
    return next(f"v{n}" for n in itertools.count(2) if f"v{n}" not in taken)


CLI_ENV_PREFIXES = ("ETLML_", "AIRFLOW_CONN_")
CLI_ENV_AIRFLOW = ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__DAGS_FOLDER")


def write_cli_env(state: Path, env: dict[str, str]) -> Path:
    """``<state>/env``, to ``source`` in a shell: the venv, and every setting of the demo's Airflow the
    etlml command (or airflow) reads: connections, every ETLML_ setting (storage root, start date and
    whatever the demo was started with), AIRFLOW_HOME (so nothing is written under ~/airflow)."""
    names = sorted(k for k in env if k.startswith(CLI_ENV_PREFIXES) and not k.startswith("ETLML_DEMO_"))
    lines = [
        "# make demo: the environment of its etlml command (and airflow); `make demo-clean` removes it",
        f". {shlex.quote(str(BIN / 'activate'))}",
        *(f"export {name}={shlex.quote(env[name])}" for name in [*names, *CLI_ENV_AIRFLOW]),
    ]
    path = state / "env"
    path.write_text("\n".join(lines) + "\n")
    return path


def note_history(dbs: localstack.Databases) -> None:
    """``ETLML_START_DATE`` before the pipeline's first run of an earlier start: the scheduler never goes
    back, so the history asked for needs ``make demo-clean`` first. Said, not refused."""
    if not os.environ.get("ETLML_START_DATE"):
        return
    from etlml import settings

    with psycopg.connect(dbs.metadata_dsn) as conn:
        row = conn.execute(
            "SELECT min(data_interval_start) FROM dag_run WHERE dag_id = %s", (PIPELINE,)
        ).fetchone()
    first = row[0] if row else None
    if first is not None and settings.start_date() < first:
        say(
            f"demo: ETLML_START_DATE {settings.start_date():%Y-%m-%d %H:%M} UTC is before this demo's first "
            f"run ({first:%Y-%m-%d %H:%M} UTC): the scheduler never goes back to earlier intervals, so "
            "no history is made; for one, `make demo-clean` first (it drops the demo's data)"
        )


def next_steps(cfg: Config, dbs: localstack.Databases, interval_end: datetime, cli_env: Path) -> str:
    """What to do with the running demo: the UI, and the exact lines to paste into a shell, which
    work every time they are printed (a version name not registered yet)."""
    start, end = (interval_end - INTERVAL).isoformat(), interval_end.isoformat()
    version = free_version(dbs)
    source = cli_env.relative_to(ROOT) if cli_env.is_relative_to(ROOT) else cli_env
    reach = "127.0.0.1 only" if cfg.host == localstack.LOCAL_HOST else f"{cfg.host} (ETLML_DEMO_HOST)"
    return f"""
  Airflow UI   {localstack.base_url(cfg.host, cfg.port)}   login admin / admin (local demo only)
               listening on {reach}
  etlml page   {localstack.base_url(cfg.host, cfg.port)}/plugin/etlml   intervals, drift, accuracy, models
  The pipeline runs every 10 minutes. Ctrl-C stops Airflow; `make demo-clean` starts over.

  The etlml command, in another shell in {ROOT} (the first line sets the demo's warehouse,
  storage and settings, so the command reads and writes what the demo does):
    source {source}
    etlml models list
    # a challenger with statistics fitted on the first run's events, scored beside the champion
    etlml models register {version} --kind linear --coef f1=0.5,f2=0.1,f3=0.4 \\
        --fit-stats-from {start} --fit-stats-to {end}
    etlml models shadow {version}

  Query        psql {dbs.warehouse_url} -c "{QUERY.replace(chr(10), " ")}"
"""


def stream_steps(stream: dict[str, str]) -> str:
    """With a stream source: how to feed it while the demo runs."""
    if not stream:
        return ""
    return f"""
  The stream   every run reads the events that arrived in its interval, 30 s after it ends; add some
  (after the `source` line above, which sets AIRFLOW_CONN_EVENTS={stream["AIRFLOW_CONN_EVENTS"]}):
    etlml stream produce --events 600 --per-second 1
"""


def watch_until_stopped(components: list[localstack.Component]) -> NoReturn:
    """Until Ctrl-C; a component that exits meanwhile raises with the end of its log."""
    while True:
        localstack.check_all(components)
        time.sleep(1)


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def demo(cfg: Config) -> int:
    stream = stream_env()
    # the stream's Redis is started too when it is the local one (without persistence: a demo)
    local_redis = stream.get("AIRFLOW_CONN_EVENTS") == LOCAL_EVENTS
    subprocess.run(
        [str(ROOT / "scripts" / "services.sh"), *(["--with-redis"] if local_redis else [])], check=True
    )
    dbs = cfg.databases()
    dbs.ensure()
    env = localstack.airflow_env(
        cfg.state / "airflow",
        dbs,
        cfg.dags,
        cfg.port,
        host=cfg.host,
        extra={**first_interval(), **stream},
    )
    say("demo: migrating Airflow's metadata DB and the warehouse ...")
    migrate(env)
    note_history(dbs)
    cli_env = write_cli_env(cfg.state, env)
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell may start us with it ignored
        signal.signal(sig, interrupt)
    started = datetime.now(UTC)
    components = start_airflow(cfg, env)
    try:
        interval_end, earlier = run_dags(
            localstack.AirflowApi(localstack.base_url(cfg.host, cfg.port)),
            components,
            started,
            cfg.dags,
            stream,
        )
        show_predictions(dbs, interval_end, earlier)
        say(next_steps(cfg, dbs, interval_end, cli_env) + stream_steps(stream))
        watch_until_stopped(components)
    except KeyboardInterrupt:
        say("\ndemo: stopping Airflow; running tasks get up to 30 s to finish ...")
        return 0
    except (localstack.ComponentExitedError, DemoError) as exc:
        say(f"demo: {exc}", err=True)
        return 1
    finally:
        localstack.stop_all(components, on_stopped=lambda name: say(f"demo: stopped {name}"))


def clean(cfg: Config) -> int:
    """Stop what is left of the demo, drop its databases and role, delete its folder."""
    for pgid in demo_groups(cfg.state):
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.killpg(pgid, signal.SIGKILL)
    for pid in localstack.processes_with_env("AIRFLOW_HOME", str(cfg.state / "airflow")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # processes of this demo only: they run with its AIRFLOW_HOME
    dbs = cfg.databases()
    dbs.drop(role=True)
    shutil.rmtree(cfg.state, ignore_errors=True)
    say(f"demo: dropped {dbs.metadata_db}, {dbs.warehouse_db} and role {dbs.role}; removed {cfg.state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from etlml.errors import SettingsError

    try:
        cfg = parse_config(argv)
        if cfg.clean:
            return clean(cfg)
        check_before_starting(cfg)
        return demo(cfg)
    except (DemoError, SettingsError, psycopg.OperationalError) as exc:
        say(f"demo: {str(exc).strip().splitlines()[0]}", err=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
