"""`make demo` as a new user meets it: errors before anything starts, the first predictions, the lines to
paste into a shell, the bind address, Ctrl-C, a component that dies, and `make demo-clean`.

The demo runs here under a name, folder and port of its own (``--name``, ``--state``,
``ETLML_DEMO_PORT``), so a developer's own demo is never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from scripts import localstack
from tests.conftest import ADMIN_DSN, ROOT, WORK_DIR, dsn_for

pytestmark = [pytest.mark.e2e, pytest.mark.db]

FIRST_PREDICTIONS_TIMEOUT = 300


@dataclass
class Demo:
    """A running `python -m scripts.demo` and everything it printed so far."""

    proc: subprocess.Popen[str]
    name: str
    state: Path
    port: int
    printed: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), line)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.printed.append((time.monotonic(), line.rstrip("\n")))

    @property
    def lines(self) -> list[str]:
        return [line for _, line in list(self.printed)]

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def when(self, text: str) -> float:
        """When the first line holding ``text`` was printed."""
        return next(at for at, line in list(self.printed) if text in line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.5)  # the reader thread may still hold the last lines
                pytest.fail(f"demo never printed {text!r} (exit {self.proc.poll()}):\n{self.output}")
            time.sleep(0.5)

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.5)
        return code


def run_demo(args: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def demo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ETLML_"))}
    return {**env, "ETLML_DEMO_ADMIN_DSN": ADMIN_DSN, **extra}


@pytest.fixture
def scratch() -> tuple[str, Path]:
    name = f"etlml_demo_{uuid.uuid4().hex[:6]}"
    return name, WORK_DIR / name


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ETLML_SOURCE",
            "bogus",
            "ETLML_SOURCE must be one of simulator, landing, redis_stream, got 'bogus'",
        ),
        ("ETLML_MAX_REJECTED_SHARE", "2", "ETLML_MAX_REJECTED_SHARE must be a number in [0, 1]"),
        ("ETLML_SOURCE_SEED", "x", "ETLML_SOURCE_SEED must be an integer"),
        ("ETLML_PSI_WARN", "0.5", "ETLML_PSI_WARN (0.5) must be below ETLML_PSI_ALERT (0.25)"),
        ("ETLML_START_DATE", "yesterday", "ETLML_START_DATE must be an ISO-8601 date and time"),
        ("ETLML_DEMO_PORT", "http", "ETLML_DEMO_PORT must be a TCP port number"),
        ("ETLML_DEMO_HOST", "10.255.255.1", "ETLML_DEMO_HOST must be an address of this machine"),
    ],
)
def test_a_configuration_error_is_one_line_with_status_2(
    scratch: tuple[str, Path], variable: str, value: str, message: str
) -> None:
    name, state = scratch
    done = run_demo(["--name", name, "--state", str(state)], demo_env(**{variable: value}))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line, no traceback
    assert done.stderr.startswith("demo: ") and message in done.stderr
    assert not state.exists()  # nothing was started or created


@pytest.mark.parametrize("variable", ["ETLML_SOURCE", "ETLML_MAX_REJECTED_SHARE"])
def test_the_cli_says_the_same_in_one_line(fresh_migrated: str, variable: str) -> None:
    env = {**os.environ, variable: "bogus"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("etlml")), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"etlml: {variable} must be")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_taken_port_is_named_at_once_with_the_way_out(scratch: tuple[str, Path]) -> None:
    name, state = scratch
    with socket.socket() as other:  # another program on the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        started = time.monotonic()
        done = run_demo(["--name", name, "--state", str(state)], demo_env(ETLML_DEMO_PORT=str(port)))
    assert done.returncode == 2
    assert time.monotonic() - started < 20  # not a three-minute wait
    assert f"port {port} on 127.0.0.1 is taken" in done.stderr
    assert f"ETLML_DEMO_PORT={port + 1} make demo" in done.stderr
    assert not state.exists()


@pytest.fixture
def demo(scratch: tuple[str, Path]) -> Iterator[Demo]:
    """A demo started under its own name; whatever happens, its processes, databases and role go."""
    name, state = scratch
    port = localstack.free_port()
    started = start_demo(name, state, port)
    try:
        yield started
    finally:
        if started.proc.poll() is None:
            started.proc.kill()  # the demo cannot stop its components: --clean must find them
        groups = [int(pgid) for pgid in (state / "pids").read_text().split()]
        done = run_demo(["--clean", "--name", name, "--state", str(state)], demo_env())
        assert done.returncode == 0, done.stderr
        assert [g for g in groups if localstack.group_alive(g)] == []
        assert localstack.processes_with_env("AIRFLOW_HOME", str(state / "airflow")) == []


def start_demo(name: str, state: Path, port: int, *args: str) -> Demo:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.demo", "--name", name, "--state", str(state), *args],
        cwd=ROOT,
        env=demo_env(ETLML_DEMO_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = Demo(proc, name, state, port)
    threading.Thread(target=demo.read, daemon=True).start()
    return demo


def pasted(demo: Demo, *commands: str) -> subprocess.CompletedProcess[str]:
    """The line the demo printed to set a shell's environment, pasted into a new one in the checkout,
    then ``commands``."""
    [source] = [line.strip() for line in demo.lines if line.strip().startswith("source ")]
    script = "\n".join(["set -e", f"cd {ROOT}", source, *commands])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ETLML_", "VIRTUAL_ENV"))}
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=False)


def component_pid(demo: Demo, name: str) -> int:
    """The process (group leader) the demo started for an Airflow component, e.g. ``scheduler``."""
    [pid] = [
        pid
        for pid in localstack.processes_with_env("AIRFLOW_HOME", str(demo.state / "airflow"))
        if cmdline(pid).split(b"\0")[2:3] == [name.encode()] and os.getpgid(pid) == pid
    ]
    return pid


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on ``port`` (IPv4, from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _, state = line.split()[1:4]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_first_predictions_then_the_pasted_lines_work_then_ctrl_c(demo: Demo) -> None:
    demo.wait_for("predictions stored", FIRST_PREDICTIONS_TIMEOUT)
    demo.wait_for("etlml models shadow v2", 10)
    assert re.search(r"demo: 200 predictions stored for \d\d:\d0-\d\d:\d0 UTC \(\d+ in all\)", demo.output)
    assert f"source {demo.state / 'env'}" in demo.output
    # a second start of the same demo is refused at once, and says how to stop the first
    again = run_demo(
        ["--name", demo.name, "--state", str(demo.state)], demo_env(ETLML_DEMO_PORT=str(demo.port))
    )
    assert again.returncode == 2 and "is already running" in again.stderr, again.stderr
    assert "Ctrl-C" in again.stderr and "another program" not in again.stderr
    # listening on the loopback only, as the demo says
    assert listening_addresses(demo.port) == {"127.0.0.1"}
    assert "listening on 127.0.0.1 only" in demo.output
    # the lines to paste, then the model walk-through the demo printed, on the demo's own data
    listed = pasted(demo, "etlml models list --json")
    assert listed.returncode == 0, listed.stderr
    assert [(v["model_version"], v["aliases"]) for v in json.loads(listed.stdout)] == [
        ("baseline_v1", ["champion"])
    ]
    at = next(i for i, line in enumerate(demo.lines) if "etlml models register v2" in line)
    registered = pasted(demo, *demo.lines[at : at + 3])  # register (two lines), shadow
    assert registered.returncode == 0, registered.stderr
    assert "challenger" in registered.stdout
    # the CLI writes where the demo's Airflow does (its storage root, under the demo's folder)
    where = pasted(demo, 'echo "$ETLML_STORAGE_ROOT $AIRFLOW_HOME"')
    home = demo.state / "airflow"
    assert where.stdout.split() == [(home / "storage").as_uri(), str(home)]
    # the scheduler's run of the latest interval, and no second run of it triggered by the demo (the
    # scheduler may have started the next interval meanwhile, if the test crossed a 10-minute mark)
    with psycopg.connect(dsn_for(f"{demo.name}_airflow")) as conn:
        runs = conn.execute(
            "SELECT run_type, data_interval_end FROM dag_run WHERE dag_id = '10_etl_ml_pipeline'"
        ).fetchall()
    assert {run_type for run_type, _ in runs} == {"scheduled"}
    assert len({end for _, end in runs}) == len(runs) >= 1
    # a few LocalExecutor workers, not Airflow's default of 32
    scheduler = component_pid(demo, "scheduler")  # its workers retitle themselves: found by group
    workers = [pid for pid in localstack.group_members(scheduler) if b"LocalExecutor" in cmdline(pid)]
    assert 0 < len(workers) <= localstack.parallelism()
    groups = [int(pgid) for pgid in (demo.state / "pids").read_text().split()]
    demo.proc.send_signal(signal.SIGINT)
    assert demo.finish() == 0
    assert [g for g in groups if localstack.group_alive(g)] == []
    assert "demo: stopping Airflow" in demo.output
    assert all(f"demo: stopped {c}" in demo.output for c in ("api-server", "scheduler", "triggerer"))
    assert localstack.processes_with_env("AIRFLOW_HOME", str(demo.state / "airflow")) == []


def test_a_component_that_dies_is_noticed_at_once_with_the_end_of_its_log(demo: Demo) -> None:
    demo.wait_for("predictions stored", FIRST_PREDICTIONS_TIMEOUT)
    scheduler = component_pid(demo, "scheduler")
    killed = time.monotonic()
    os.kill(scheduler, signal.SIGKILL)
    assert demo.finish() == 1
    assert demo.when("demo: scheduler exited with code -9; the end of") - killed < 10  # not minutes later
    assert str(demo.state / "logs" / "scheduler.log") in demo.output
    assert localstack.processes_with_env("AIRFLOW_HOME", str(demo.state / "airflow")) == []


def test_a_demo_killed_outright_leaves_what_demo_clean_removes(demo: Demo) -> None:
    demo.wait_for("predictions stored", FIRST_PREDICTIONS_TIMEOUT)
    groups = [int(pgid) for pgid in (demo.state / "pids").read_text().split()]
    demo.proc.kill()  # SIGKILL: the demo cannot stop Airflow; its components keep running
    assert demo.finish() == -signal.SIGKILL
    assert all(localstack.group_alive(g) for g in groups)
    # the fixture runs `--clean` now and checks that none of these groups is left


def test_a_dag_file_airflow_cannot_import_stops_the_demo_naming_it(scratch: tuple[str, Path]) -> None:
    """What the check before starting cannot see (here a DAG file that raises) is read from Airflow's
    import errors once the DAG processor has parsed the folder: named, and everything started stops."""
    name, state = scratch
    dags = WORK_DIR / f"{name}-dags"
    shutil.copytree(ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    broken = 'from airflow.sdk import dag\n\nraise RuntimeError("this DAG file is broken")\n'
    (dags / "99_broken.py").write_text(broken)
    demo = start_demo(name, state, localstack.free_port(), "--dags", str(dags))
    try:
        assert demo.finish(timeout=FIRST_PREDICTIONS_TIMEOUT) == 1
        said = f"Airflow cannot import {dags / '99_broken.py'}: RuntimeError: this DAG file is broken"
        assert said in demo.output, demo.output
        assert "predictions stored" not in demo.output
        assert localstack.processes_with_env("AIRFLOW_HOME", str(state / "airflow")) == []
    finally:
        assert run_demo(["--clean", "--name", name, "--state", str(state)], demo_env()).returncode == 0
