"""A local Airflow for ``make demo``, the end-to-end tests and the benchmark: databases, the Airflow
components as watched processes, and a client of the REST API v2.

Everything here is for one machine and local use only: the admin/admin login it configures must
never reach a shared deployment, and the API server listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import conninfo, sql

LOCAL_LOGIN = {"admin": "admin"}  # local demo and tests only; see docs/deploy.md
LOCAL_HOST = "127.0.0.1"
TERMINAL_STATES = {"success", "failed"}
LOG_TAIL_LINES = 15
_ERROR_MARKS = ("Error", "Errno", "Exception", "error:", "FATAL")


class ComponentExitedError(RuntimeError):
    """A process of the local stack exited; the message ends with the lines of its log that say why."""


@dataclass(frozen=True)
class Databases:
    """The role and the two databases of a local stack: Airflow's metadata and the warehouse."""

    admin_dsn: str
    role: str
    password: str
    metadata_db: str
    warehouse_db: str

    def _url(self, dbname: str, scheme: str = "postgresql") -> str:
        info = conninfo.conninfo_to_dict(self.admin_dsn)
        host, port = info.get("host", "127.0.0.1"), info.get("port", "5432")
        return f"{scheme}://{self.role}:{self.password}@{host}:{port}/{dbname}"

    @property
    def metadata_url(self) -> str:
        return self._url(self.metadata_db, "postgresql+psycopg")

    @property
    def metadata_dsn(self) -> str:
        """The metadata database for psycopg (``metadata_url`` is SQLAlchemy's)."""
        return self._url(self.metadata_db)

    @property
    def warehouse_url(self) -> str:
        return self._url(self.warehouse_db)

    def ensure(self) -> None:
        """Create the role and both databases unless they exist (safe to repeat)."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.role,)).fetchone():
                admin.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(self.role), sql.Literal(self.password)
                    )
                )
            for name in (self.metadata_db, self.warehouse_db):
                if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    admin.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(name), sql.Identifier(self.role)
                        )
                    )

    def drop(self, *, role: bool = False) -> None:
        """Drop both databases, and with ``role`` the role too (by default it stays: other stacks of
        the tests may share it)."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            for name in (self.metadata_db, self.warehouse_db):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            if role:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.role)))


def airflow_env(
    home: Path,
    dbs: Databases,
    dags_folder: Path,
    port: int,
    *,
    host: str = LOCAL_HOST,
    executor: str = "LocalExecutor",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of every process of one local stack; its API server listens on ``host``."""
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps(LOCAL_LOGIN))  # local only
    secret_file = home / "jwt_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dbs.metadata_url,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text(),
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url(host, port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url(host, port)}/execution/",
            # the LocalExecutor starts this many worker processes (~150 MB each): a few per core
            "AIRFLOW__CORE__PARALLELISM": str(parallelism()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW_CONN_WAREHOUSE": dbs.warehouse_url,
            "ETLML_STORAGE_ROOT": (home / "storage").resolve().as_uri(),
        }
    )
    # the pipeline catches up every interval from ETLML_START_DATE on: a local stack starts at the
    # current interval, unless told otherwise, instead of running every interval since the default
    env.setdefault("ETLML_START_DATE", current_interval_start().isoformat())
    env.update(extra or {})
    return env


def current_interval_start(now: datetime | None = None, minutes: int = 10) -> datetime:
    """The start of the 10-minute interval running at ``now`` (UTC, aligned to the hour like
    ``*/10``), which is also the end of the latest interval that has closed."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(minute=now.minute - now.minute % minutes, second=0, microsecond=0)


def base_url(host: str, port: int) -> str:
    """Where local clients reach an API server listening on ``host``."""
    reachable = LOCAL_HOST if host in {"0.0.0.0", "::", ""} else host  # noqa: S104 - the wildcard, compared
    return f"http://{reachable}:{port}"


def parallelism() -> int:
    """Task slots for a local stack: twice the cores, at least 4 (Airflow's default of 32 starts 32
    LocalExecutor workers, about 5 GB, whatever the machine)."""
    return max(4, 2 * (os.cpu_count() or 1))


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not listen on ``host:port`` now (``errno.EADDRINUSE``: another program
    does), or ``None`` if it could."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return exc
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: Iterable[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a command in its own process group, output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(args), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The end of a log, and before it any earlier line of its last few hundred that names an error:
    what a reader needs to see why a process stopped."""
    try:
        text = path.read_text(errors="replace").splitlines()[-400:]
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    tail = text[-lines:]
    errors = [line for line in text[:-lines] if any(mark in line for mark in _ERROR_MARKS)][-5:]
    return "\n".join([*errors, "...", *tail] if errors else tail)


@dataclass
class Component:
    """One process (group) of a local stack, with its own log."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, args: Iterable[str], env: dict[str, str], log: Path) -> Component:
        return cls(name, start(args, env, log), log)

    def check(self) -> None:
        """Raise :class:`ComponentExitedError` if the process has exited."""
        code = self.proc.poll()
        if code is not None:
            raise ComponentExitedError(
                f"{self.name} exited with code {code}; the end of {self.log}:\n{log_tail(self.log)}"
            )


def check_all(components: Sequence[Component]) -> None:
    for component in components:
        component.check()


def stop_all(
    components: Sequence[Component], grace: float = 30.0, on_stopped: Callable[[str], None] | None = None
) -> None:
    """SIGTERM every component's group at once, SIGKILL what is left after ``grace`` seconds. The
    group of a component that has already exited is killed at once: its leader is gone, and what is
    left of it (task workers, say) has nobody to wait for."""
    for component in components:
        exited = component.proc.poll() is not None
        _signal(component.proc.pid, signal.SIGKILL if exited else signal.SIGTERM)
    deadline = time.monotonic() + grace
    waiting = list(components)
    while waiting and time.monotonic() < deadline:
        for component in list(waiting):
            component.proc.poll()
            if not group_alive(component.proc.pid):
                waiting.remove(component)
                if on_stopped:
                    on_stopped(component.name)
        time.sleep(0.2)
    for component in waiting:
        stop(component.proc, grace=0)
        if on_stopped:
            on_stopped(f"{component.name} (killed after {grace:.0f} s)")


def _signal(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group has already exited: nothing to stop
        os.killpg(pgid, sig)


def stop(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """Stop the process group of ``proc``: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            if not group_alive(proc.pid):
                return
            time.sleep(0.2)


def group_members(pgid: int) -> list[int]:
    """The running processes of group ``pgid`` (zombies do not count). Found by /proc/<pid>/stat:
    a process that retitles itself hides its environment, not its group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running."""
    return bool(group_members(pgid))


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of running processes whose environment has ``name=value`` (e.g. a stack's AIRFLOW_HOME)."""
    needle = f"{name}={value}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


class AirflowApi:
    """A small client of Airflow's REST API v2, logged in with the local admin account."""

    def __init__(self, base_url: str, username: str = "admin", password: str = "admin") -> None:  # noqa: S107 local login
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, timeout=30)
        self.username, self.password = username, password

    def wait_healthy(self, timeout: float = 180, watch: Sequence[Component] = ()) -> None:
        """Wait until the API server answers and the metadata DB and scheduler are healthy; raise
        :class:`ComponentExitedError` at once if one of ``watch`` exits meanwhile."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            check_all(watch)
            try:
                health = self.client.get("/api/v2/monitor/health").json()
                last = json.dumps(health)
                if all(
                    health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler")
                ):
                    return
            except (httpx.HTTPError, ValueError) as exc:
                last = repr(exc)
            time.sleep(1)
        raise TimeoutError(f"Airflow at {self.base_url} not healthy after {timeout:.0f} s: {last}")

    def login(self) -> None:
        """``POST /auth/token`` and use the JWT for every later call."""
        response = self.client.post(
            "/auth/token", json={"username": self.username, "password": self.password}
        )
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.is_error:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120, watch: Sequence[Component] = ()) -> None:
        """Wait until the DAG processor has parsed ``dag_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check_all(watch)
            if self.client.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                return
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} did not appear within {timeout:.0f} s")

    def dags(self) -> list[dict[str, Any]]:
        """Every DAG the DAG processor has stored (``fileloc``, ``last_parsed_time``, ...)."""
        body = self._call("GET", "/api/v2/dags", params={"limit": 1000})
        dags: list[dict[str, Any]] = body["dags"]
        return dags

    def import_errors(self) -> list[dict[str, Any]]:
        """The DAG files that failed to import: ``filename``, ``timestamp``, ``stack_trace``."""
        body = self._call("GET", "/api/v2/importErrors", params={"limit": 1000})
        errors: list[dict[str, Any]] = body["import_errors"]
        return errors

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(
        self, dag_id: str, logical_date: datetime | None = None, conf: dict[str, Any] | None = None
    ) -> str:
        """Trigger a run; with a logical date, the run gets the data interval that ends before it."""
        when = logical_date or datetime.now(UTC)
        body = {"logical_date": when.isoformat(), "conf": conf or {}}
        return str(self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return found

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.run(dag_id, run_id)["state"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, newest data interval first."""
        body = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})
        runs: list[dict[str, Any]] = body["dag_runs"]
        return sorted(runs, key=lambda r: str(r.get("data_interval_end") or ""), reverse=True)

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 300, watch: Sequence[Component] = ()
    ) -> str:
        """Wait until the run succeeds or fails; return its final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check_all(watch)
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                return state
            time.sleep(2)
        raise TimeoutError(f"run {dag_id}/{run_id} not finished after {timeout:.0f} s")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """State of each task instance, named ``task_id``, or ``task_id[i]`` for map index i."""
        body = self._call(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else ""): str(ti["state"])
            for ti in body["task_instances"]
        }
