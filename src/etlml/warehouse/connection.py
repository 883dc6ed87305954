"""Warehouse connections, and the SQL files (``sql/*.sql``) that live beside the code."""

from __future__ import annotations

from functools import cache
from importlib import resources

import psycopg

from etlml.errors import PermanentError


class WarehouseUnavailableError(RuntimeError):
    """The warehouse connection is missing or the server does not answer."""


class ConnectionMissingError(PermanentError, WarehouseUnavailableError):
    """No Airflow connection of that id is defined: a configuration error that retrying cannot fix."""


def connect(conn_id: str) -> psycopg.Connection[tuple[object, ...]]:
    """Open a psycopg connection to the warehouse from the Airflow connection ``conn_id``.

    The connection is resolved the usual Airflow way (``AIRFLOW_CONN_<ID>``, secrets backends,
    the metadata DB), so tasks and the ``etlml`` CLI find the same database.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    except AirflowNotFoundException as exc:
        raise ConnectionMissingError(
            f"the Airflow connection {conn_id!r} is not defined: set AIRFLOW_CONN_{conn_id.upper()}="
            "postgresql://USER:PASSWORD@HOST:5432/DATABASE in the environment (in a shell: export it; "
            "`make demo` prints the line for its warehouse), or add the connection to Airflow"
        ) from exc
    except psycopg.OperationalError as exc:
        raise WarehouseUnavailableError(
            # psycopg's message spans lines (libpq's hint): one line, as every error of the CLI
            f"cannot reach the warehouse through Airflow connection {conn_id!r}: {' '.join(str(exc).split())}"
            + "; check that PostgreSQL is running and the connection's host, port and login are right"
        ) from exc
    if not isinstance(conn, psycopg.Connection):
        raise WarehouseUnavailableError(f"connection {conn_id!r} did not give a psycopg 3 connection")
    return conn


@cache
def query(name: str) -> str:
    """Return the text of ``sql/<name>.sql`` from this package."""
    return resources.files("etlml.warehouse").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
