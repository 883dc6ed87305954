"""Warehouse connections, and the SQL files (``sql/*.sql``) that live beside the code."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg

from etlml import settings
from etlml.errors import PermanentError


class WarehouseUnavailableError(RuntimeError):
    """The warehouse connection is missing or the server does not answer."""


class ConnectionMissingError(PermanentError, WarehouseUnavailableError):
    """No Airflow connection of that id is defined: a configuration error that retrying cannot fix."""


def connect(conn_id: str) -> psycopg.Connection[tuple[object, ...]]:
    """Open a psycopg connection to the warehouse from the Airflow connection ``conn_id``.

    The connection is resolved the usual Airflow way (``AIRFLOW_CONN_<ID>``, secrets backends,
    the metadata DB), so tasks and the ``etlml`` CLI find the same database. A ``postgres://`` URI in
    ``AIRFLOW_CONN_<ID>`` is read here without importing Airflow (seconds saved on every command),
    with the same arguments the Postgres hook would give psycopg.
    """
    args = uri_arguments(settings.connection_uri(conn_id))
    if args is not None:
        try:
            return psycopg.connect(**args)
        except psycopg.OperationalError as exc:
            raise _unreachable(conn_id, args.get("host"), args.get("port"), exc) from exc
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    hook = PostgresHook(postgres_conn_id=conn_id)
    try:
        conn = hook.get_conn()
    except AirflowNotFoundException as exc:
        raise ConnectionMissingError(
            f"the Airflow connection {conn_id!r} is not defined: set AIRFLOW_CONN_{conn_id.upper()}="
            "postgresql://USER:PASSWORD@HOST:5432/DATABASE in the environment (in a shell: export it; "
            "`make demo` prints the line for its warehouse), or add the connection to Airflow"
        ) from exc
    except psycopg.OperationalError as exc:
        raise _unreachable(conn_id, hook.connection.host, hook.connection.port, exc) from exc
    if not isinstance(conn, psycopg.Connection):
        raise WarehouseUnavailableError(f"connection {conn_id!r} did not give a psycopg 3 connection")
    return conn


def _unreachable(conn_id: str, host: Any, port: Any, exc: Exception) -> WarehouseUnavailableError:
    reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return WarehouseUnavailableError(
        f"cannot reach the warehouse at {host or 'localhost'}:{port or 5432} through Airflow connection "
        f"{conn_id!r}: {reason}; check that PostgreSQL is running and the connection's host, port and "
        "login are right"
    )


HOOK_ONLY_EXTRAS = frozenset(
    {"iam", "redshift", "redshift-serverless", "cursor", "cluster-identifier", "workgroup-name"}
    | {"aws_conn_id", "sqlalchemy_scheme", "sqlalchemy_query", "azure_conn_id", "__extra__"}
)
"""Query parameters of a connection URI that only the Postgres hook understands (IAM tokens, cursor
factories, JSON extras): such a URI is left to Airflow."""


def uri_arguments(uri: str | None) -> dict[str, Any] | None:
    """psycopg's arguments for an Airflow connection URI ``postgres[ql]://login:password@host:port/db?
    extra=value``, decoded as Airflow decodes it; ``None`` when Airflow must resolve it."""
    if uri is None or uri.count("://") != 1:  # a host with its own protocol: Airflow's reading
        return None
    parts = urlsplit(uri)
    extras = parse_qsl(parts.query, keep_blank_values=True)
    try:
        port = parts.port
    except ValueError:  # not a port number: Airflow says so
        return None
    if parts.scheme not in {"postgres", "postgresql"} or any(k in HOOK_ONLY_EXTRAS for k, _ in extras):
        return None
    found = {
        "host": unquote(parts.hostname) if parts.hostname else None,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "dbname": unquote(parts.path[1:]) if parts.path[1:] else None,
        "port": port,
    }
    return {k: v for k, v in found.items() if v is not None} | {k: _extra(v) for k, v in extras}


def _extra(value: str) -> Any:
    """A query parameter's value as Airflow's ``extra_dejson`` holds it: JSON if it parses (``5`` is a
    number), else the text."""
    import json

    try:
        return json.loads(value) if value else value
    except json.JSONDecodeError:
        return value


@cache
def query(name: str) -> str:
    """Return the text of ``sql/<name>.sql`` from this package."""
    return resources.files("etlml.warehouse").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
