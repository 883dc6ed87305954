"""``settings.validate`` reads every setting a DAG file or a task reads (what ``make demo`` checks before
it starts anything), and a warehouse URI is read without Airflow exactly as Airflow reads it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from etlml import settings
from etlml.errors import SettingsError
from etlml.warehouse import connection

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = sorted(set(re.findall(r'"(ETLML_[A-Z_]+)"', (ROOT / "src/etlml/settings.py").read_text())))


def test_what_the_dag_files_import_from_settings_is_validated() -> None:
    """A name a DAG file imports from etlml.settings, and calls when parsed, is one of the readers."""
    imported = {
        alias.name
        for path in (ROOT / "dags").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "etlml.settings"
        for alias in node.names
    }
    assert imported  # the DAG files read their start date at parse time
    assert imported <= {reader.__name__ for reader in settings.readers()}


@pytest.mark.parametrize("variable", VARIABLES)
def test_a_value_any_reader_refuses_is_refused_by_validate(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "yesterday")
    refused = []
    for reader in settings.readers():
        try:
            reader()
        except SettingsError as exc:
            refused.append(str(exc))
    if not refused:
        settings.validate()  # a free-form setting (a name, a URL): nothing to refuse
        return
    with pytest.raises(SettingsError, match=variable):
        settings.validate()


def test_a_start_date_of_yesterday_is_refused_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETLML_START_DATE", "yesterday")
    with pytest.raises(SettingsError, match="ETLML_START_DATE must be an ISO-8601"):
        settings.validate()


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://etlml:etlml@127.0.0.1:5432/etlml_warehouse",
        "postgres://us%40er:p%2Fa%3Ass@db.example.com:6543/ware%20house?sslmode=require&connect_timeout=5",
        "postgresql://localhost/db",
        "postgresql://u@/db?host=%2Fvar%2Frun%2Fpostgresql",
    ],
)
def test_a_uri_gives_psycopg_what_the_postgres_hook_gives_it(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.connection import Connection

    airflow = Connection(conn_id="warehouse", uri=uri)
    expected = {
        "host": airflow.host or None,
        "user": airflow.login or None,
        "password": airflow.password or None,
        "dbname": airflow.schema or None,
        "port": airflow.port,
        **airflow.extra_dejson,
    }
    assert connection.uri_arguments(uri) == {k: v for k, v in expected.items() if v is not None}


@pytest.mark.parametrize(
    "uri",
    [
        '{"conn_type": "postgres", "host": "h"}',
        "postgresql://h/db?iam=true",
        "mysql://h/db",
        "postgresql://http://h/db",
    ],
)
def test_what_only_airflow_understands_is_left_to_airflow(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", uri)
    assert connection.uri_arguments(settings.connection_uri("warehouse")) is None


def test_a_secrets_backend_is_asked_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://h/db")
    assert settings.connection_uri("warehouse") == "postgresql://h/db"
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "some.Backend")
    assert settings.connection_uri("warehouse") is None
