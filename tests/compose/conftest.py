"""The Compose layer: a Docker engine of its own, the images built without Docker Hub, and a day's
backfill on each deployment (one worker; two workers without shared disk, one of them killed).

Both deployments backfill the same day: the 144 intervals before the current one, fixed once per
session, so their warehouses can be compared row for row."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import localstack
from tests.compose.day import Result, run_day, write_artifact, write_landing
from tests.compose.engine import Deployment, Engine, missing_tools
from tests.conftest import ROOT

REPORT = ROOT / "test-output" / "compose.json"


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    missing = missing_tools()
    if missing:
        pytest.fail(f"the Compose layer needs {', '.join(missing)}: `make compose-deps` installs them")
    run = Path(tempfile.mkdtemp(prefix="etlml-docker-"))  # short: the socket path is limited to 108 bytes
    docker = Engine(run)
    docker.start()
    try:
        docker.built = docker.all_images()
        yield docker
    finally:
        docker.stop()
    left = docker.leftovers()
    assert not left, f"processes of the test's Docker engine outlived it: {left}"


def _deploy(engine: Engine, project: str, files: list[str], tmp: Path) -> Deployment:
    deployment = Deployment.create(engine, tmp, project, files)
    deployment.extra_env["AIRFLOW_PORT"] = str(localstack.free_port())
    deployment.extra_env["AIRFLOW_BASE_URL"] = f"http://localhost:{deployment.extra_env['AIRFLOW_PORT']}"
    return deployment


def _report(name: str, result: Result) -> None:
    REPORT.parent.mkdir(exist_ok=True)
    found = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    found[name] = result.summary()
    REPORT.write_text(json.dumps(found, indent=2, default=str))
    print(f"\n{name}: {json.dumps(result.summary(), default=str)}")  # noqa: T201 the figures, in CI's log


@pytest.fixture(scope="session")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("landing")
    write_landing(folder)
    return folder


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artifact(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def one_host(
    engine: Engine, landing: Path, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Result:
    """docker-compose.yml alone, started with the README's commands; the day backfilled by its one
    worker; the browser's login and the etlml page; then `down -v`."""
    deployment = _deploy(engine, "etlml-one", ["docker-compose.yml"], tmp_path_factory.mktemp("one"))
    result = run_day(deployment, landing, artifacts, kill_a_worker=False, browse=True)
    _report("one worker", result)
    return result


@pytest.fixture(scope="session")
def two_workers(
    engine: Engine, landing: Path, artifacts: Path, one_host: Result, tmp_path_factory: pytest.TempPathFactory
) -> Result:
    """With docker-compose.workers.yml: two workers, no shared disk, intermediates and logs on the S3
    server; one worker killed mid-backfill. Starts after the one-worker deployment is down."""
    deployment = _deploy(
        engine,
        "etlml-two",
        ["docker-compose.yml", "docker-compose.workers.yml"],
        tmp_path_factory.mktemp("two"),
    )
    result = run_day(deployment, landing, artifacts, kill_a_worker=True, browse=False)
    _report("two workers", result)
    return result
