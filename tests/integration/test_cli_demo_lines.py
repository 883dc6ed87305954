"""What `make demo` prints for the etlml command, on a real warehouse: one line that sets the whole
environment, version names that are free every time they are printed, and predictions of an earlier
start never shown as new. (Starting the demo itself is tests/e2e/test_demo.py's.)"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from psycopg import conninfo

from etlml import cli
from scripts import demo, localstack
from tests.conftest import ADMIN_DSN

pytestmark = pytest.mark.db

STATS = '{"f1": {"mean": 10, "std": 2}, "f2": {"mean": 0, "std": 1}, "f3": {"mean": 100, "std": 10}}'


def databases(dsn: str) -> localstack.Databases:
    info = conninfo.conninfo_to_dict(dsn)
    return localstack.Databases(ADMIN_DSN, info.get("user", "postgres"), "", "unused", str(info["dbname"]))


def test_the_version_to_register_is_free_every_time_it_is_printed(fresh_migrated: str) -> None:
    dbs = databases(fresh_migrated)
    assert demo.free_version(dbs) == "v2"
    linear = ["--kind", "linear", "--coef", "f1=1,f2=1,f3=1", "--stats", STATS]
    assert cli.main(["models", "register", "v2", *linear]) == 0
    assert demo.free_version(dbs) == "v3"


def test_one_sourced_line_gives_the_command_the_demos_places(fresh_migrated: str, tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    env = {
        "AIRFLOW_CONN_WAREHOUSE": f"postgresql://postgres@127.0.0.1:5432/{databases(fresh_migrated).warehouse_db}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://u:p@127.0.0.1/meta",
        "AIRFLOW__CORE__DAGS_FOLDER": "/srv/dags",
        "ETLML_STORAGE_ROOT": (home / "storage").as_uri(),
        "ETLML_SIMULATOR_SHIFT": "f3=+20",  # a setting the demo was started with
        "ETLML_DEMO_PORT": "8081",  # the demo's own, not the command's
        "PATH": "/usr/bin:/bin",
    }
    path = demo.write_cli_env(tmp_path, env)
    shown = subprocess.run(
        ["bash", "-c", f"source {path} && env && etlml models list --json"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    exported = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    for name in ("AIRFLOW_CONN_WAREHOUSE", "AIRFLOW_HOME", "ETLML_STORAGE_ROOT", "ETLML_SIMULATOR_SHIFT"):
        assert exported[name] == env[name]
    assert "ETLML_DEMO_PORT" not in exported
    assert '"model_version": "baseline_v1"' in shown.stdout


def test_predictions_of_an_earlier_start_are_said_to_be_older(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    end = localstack.current_interval_start()
    demo.show_predictions(databases(fresh_migrated), end, end - timedelta(minutes=3))
    said = capsys.readouterr().out
    assert "nothing new yet: an earlier start of this demo scored" in said
    assert f"{end + timedelta(minutes=10):%H:%M} UTC" in said
    demo.show_predictions(databases(fresh_migrated), end, None)
    assert capsys.readouterr().out.startswith("\ndemo: 0 predictions stored for")
