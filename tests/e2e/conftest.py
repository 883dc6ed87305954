"""Real Airflow stacks for the end-to-end suites: scheduler, API server, DAG processor, triggerer, workers.

Each stack gets its own metadata and warehouse databases, its own AIRFLOW_HOME and port, runs in its own
process group, and must leave no process behind when stopped. Airflow's metadata schema is migrated
once per session, into a template database each stack's metadata database is created from.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from scripts import localstack
from tests.conftest import ADMIN_DSN, ROOT, WORK_DIR

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ARTIFACTS = ROOT / "test-output" / "e2e"


@dataclass
class Stack:
    """A running local Airflow and what the tests need to talk to it."""

    name: str
    api: localstack.AirflowApi
    dbs: localstack.Databases
    env: dict[str, str]
    components: list[localstack.Component]
    logs: Path

    @property
    def base_url(self) -> str:
        return self.api.base_url


def _databases(tag: str) -> localstack.Databases:
    suffix = uuid.uuid4().hex[:8]
    return localstack.Databases(
        admin_dsn=ADMIN_DSN,
        role="etlml_e2e",
        password="etlml_e2e",
        metadata_db=f"etlml_e2e_{tag}_meta_{suffix}",
        warehouse_db=f"etlml_e2e_{tag}_wh_{suffix}",
    )


def _migrate(env: dict[str, str]) -> None:
    migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, check=False)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]


@pytest.fixture(scope="session")
def metadata_template() -> Iterator[str]:
    """A metadata database migrated once (``airflow db migrate``), the template of every stack's."""
    dbs = _databases("template")
    dbs.ensure()
    _migrate(localstack.airflow_env(WORK_DIR / "e2e-template", dbs, ROOT / "dags", localstack.free_port()))
    try:
        yield dbs.metadata_db
    finally:
        dbs.drop()


def _copy_database(template: str, name: str, owner: str) -> None:
    """``name``, a copy of ``template`` (nobody may be connected to it meanwhile)."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(owner), sql.Identifier(template)
            )
        )


def _start_stack(
    name: str, commands: list[list[str]], extra_env: dict[str, str], *, template: str
) -> Iterator[Stack]:
    """Start a stack; its metadata database a copy of ``template`` (:func:`metadata_template`)."""
    dbs = _databases(name)
    _copy_database(template, dbs.metadata_db, dbs.role)
    dbs.ensure()
    port = localstack.free_port()
    home = WORK_DIR / f"e2e-{name}"
    env = localstack.airflow_env(home, dbs, ROOT / "dags", port, extra=extra_env)
    env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + dbs.metadata_url
    logs = ARTIFACTS / name
    logs.mkdir(parents=True, exist_ok=True)
    components = [
        localstack.Component.start(" ".join(cmd[1:]), cmd, env, logs / f"{cmd[1].replace(' ', '-')}.log")
        for cmd in commands
    ]
    api = localstack.AirflowApi(f"http://127.0.0.1:{port}")
    stack = Stack(name, api, dbs, env, components, logs)
    try:
        api.wait_healthy(timeout=240, watch=components)
        api.login()
        yield stack
    finally:
        localstack.stop_all(components)
        groups = [c.proc.pid for c in components if localstack.group_alive(c.proc.pid)]
        strays = localstack.processes_with_env("AIRFLOW_HOME", str(home))
        dbs.drop()
        assert groups == [], f"process groups still alive after stop: {groups}"
        assert strays == [], f"processes of this stack still running after stop: {strays}"


@pytest.fixture(scope="module")
def local_stack(warehouse_dsn: str, metadata_template: str) -> Iterator[Stack]:
    """`airflow standalone` (LocalExecutor) in one process group."""
    yield from _start_stack("local", [[AIRFLOW, "standalone"]], {}, template=metadata_template)


@pytest.fixture(scope="module")
def celery_stack(warehouse_dsn: str, metadata_template: str) -> Iterator[Stack]:
    """API server, scheduler, DAG processor and triggerer, and a separate `airflow celery worker`."""
    extra = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        # a Redis database of its own, so queued messages of another run never reach this worker
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{1 + uuid.uuid4().int % 15}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # a task whose worker was killed is failed (then retried) after 30 s without a heartbeat
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
    commands = [
        [AIRFLOW, "api-server"],
        [AIRFLOW, "scheduler"],
        [AIRFLOW, "dag-processor"],
        [AIRFLOW, "triggerer"],
        [AIRFLOW, "celery", "worker"],
    ]
    yield from _start_stack("celery", commands, extra, template=metadata_template)
