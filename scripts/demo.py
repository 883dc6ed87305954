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
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import NoReturn

import psycopg

from scripts import localstack

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
INIT, PIPELINE, LABELS = "00_init_schema", "10_etl_ml_pipeline", "15_ingest_labels"
MONITOR = "30_monitor"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
SCHEDULER_GRACE = 90.0  # seconds the scheduler gets to start the latest interval's run by itself
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
    )


def say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def check_before_starting(cfg: Config) -> None:
    """What would otherwise fail later, after minutes: etlml's settings and the port."""
    from etlml import settings

    settings.load()  # a SettingsError names the variable
    settings.monitoring()  # 30_monitor's thresholds, read by that DAG alone
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


def first_pipeline_run(api: localstack.AirflowApi, watch: list[localstack.Component], since: datetime) -> str:
    """The run of the latest closed interval: the one the scheduler starts when the DAG is unpaused
    (or ran in an earlier start of the demo); triggered only if the scheduler has not started it."""
    deadline = time.monotonic() + SCHEDULER_GRACE
    while time.monotonic() < deadline:
        localstack.check_all(watch)
        for run in api.runs(PIPELINE):
            if datetime.fromisoformat(str(run["data_interval_end"])) >= since:
                return str(run["dag_run_id"])
        time.sleep(1)
    return api.trigger(PIPELINE)


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
    api: localstack.AirflowApi, watch: list[localstack.Component], env: dict[str, str] | None = None
) -> datetime:
    """Both DAGs unpaused, the schema DAG run, then the pipeline's first run; returns the end of
    its data interval. With a stream source (``env`` holds its connection), the first run's interval
    is seeded first."""
    api.wait_healthy(watch=watch)
    api.login()
    for dag_id in (INIT, PIPELINE, LABELS, MONITOR):
        api.wait_for_dag(dag_id, watch=watch)
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
    run_id = first_pipeline_run(api, watch, since)
    say(f"demo: {PIPELINE} is scoring the interval that ended at {since:%H:%M} UTC ({run_id}) ...")
    if (state := api.wait_for_run(PIPELINE, run_id, watch=watch)) != "success":
        raise DemoError(f"{PIPELINE} run {run_id} ended {state}: {api.task_states(PIPELINE, run_id)}")
    return datetime.fromisoformat(str(api.run(PIPELINE, run_id)["data_interval_end"]))


def show_predictions(dbs: localstack.Databases, interval_end: datetime) -> None:
    """The predictions of the first run's interval (the scheduler may have scored a later one too)."""
    interval = {"end": interval_end}
    with psycopg.connect(dbs.warehouse_url) as conn:
        count, total = conn.execute(FIRST_RUN_COUNTS, interval).fetchone() or (0, 0)
        rows = conn.execute(FIRST_RUN_LATEST, interval).fetchall()
    window = f"{interval_end - INTERVAL:%H:%M}-{interval_end:%H:%M} UTC"
    say(f"\ndemo: {count} predictions stored for {window} ({total} in all); the latest:")
    for row in rows:
        say("    " + "  ".join(map(str, row)))


def next_steps(cfg: Config, dbs: localstack.Databases, interval_end: datetime) -> str:
    """What to do with the running demo: the UI, and the exact lines to paste into a shell."""
    start, end = (interval_end - INTERVAL).isoformat(), interval_end.isoformat()
    reach = "127.0.0.1 only" if cfg.host == localstack.LOCAL_HOST else f"{cfg.host} (ETLML_DEMO_HOST)"
    return f"""
  Airflow UI   {localstack.base_url(cfg.host, cfg.port)}   login admin / admin (local demo only)
               listening on {reach}
  etlml page   {localstack.base_url(cfg.host, cfg.port)}/plugin/etlml   intervals, drift, accuracy, models
  The pipeline runs every 10 minutes. Ctrl-C stops Airflow; `make demo-clean` starts over.

  The etlml command, in another shell in {ROOT}:
    source .venv/bin/activate
    export AIRFLOW_CONN_WAREHOUSE={dbs.warehouse_url}
    etlml models list
    # a challenger with statistics fitted on the first run's events, scored beside the champion
    etlml models register v2 --kind linear --coef f1=0.5,f2=0.1,f3=0.4 \\
        --fit-stats-from {start} --fit-stats-to {end}
    etlml models shadow v2

  Query        psql {dbs.warehouse_url} -c "{QUERY.replace(chr(10), " ")}"
"""


def stream_steps(stream: dict[str, str]) -> str:
    """With a stream source: how to feed it while the demo runs."""
    if not stream:
        return ""
    return f"""
  The stream   every run reads the events that arrived in its interval, 30 s after it ends; add some:
    export AIRFLOW_CONN_EVENTS={stream["AIRFLOW_CONN_EVENTS"]}
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
        ROOT / "dags",
        cfg.port,
        host=cfg.host,
        extra={**first_interval(), **stream},
    )
    say("demo: migrating Airflow's metadata DB and the warehouse ...")
    migrate(env)
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell may start us with it ignored
        signal.signal(sig, interrupt)
    components = start_airflow(cfg, env)
    try:
        interval_end = run_dags(
            localstack.AirflowApi(localstack.base_url(cfg.host, cfg.port)), components, stream
        )
        show_predictions(dbs, interval_end)
        say(next_steps(cfg, dbs, interval_end) + stream_steps(stream))
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
