"""The warehouse role the DAGs connect as where the schema's owner is someone else (Docker Compose).

It owns nothing and may only read and write what the pipeline needs (``roles/pipeline_role.sql``), so
a task can neither empty, drop nor alter a table, nor change the model registry.
"""

from __future__ import annotations

import re
from importlib import resources

import psycopg
from psycopg import sql

from etlml.errors import PermanentError
from etlml.warehouse.connection import query

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_POWERS = ("SUPERUSER", "CREATEDB", "CREATEROLE", "BYPASSRLS", "REPLICATION")


class RoleError(PermanentError, ValueError):
    """The pipeline role cannot be made as asked (the owner itself, a superuser, a malformed name)."""


def _refuse_unless_ordinary(conn: psycopg.Connection[tuple[object, ...]], role: str) -> bool:
    """Whether ``role`` exists; raise unless it may be the pipeline role."""
    if not ROLE_NAME.fullmatch(role) or role.startswith("pg_"):
        raise RoleError(
            f"pipeline role {role!r} is not a valid name: lower-case letters, digits and '_', not "
            "starting with a digit or pg_ (e.g. etlml_pipeline)"
        )
    found = conn.execute(query("role_attributes"), {"role": role}).fetchone()
    if found is None:
        return False
    oid, is_current, *powers = found
    if is_current:
        raise RoleError(f"{role!r} is the role running this command, the owner; name another role")
    held = [name for name, on in zip(_POWERS, powers, strict=True) if on]
    if held:
        raise RoleError(f"role {role!r} has {', '.join(held)}; the pipeline role must be an ordinary role")
    owned = conn.execute(query("role_owned_objects"), {"oid": oid}).fetchone()
    if owned != (0,):
        raise RoleError(f"role {role!r} owns objects in this database; the pipeline role must own nothing")
    return True


def grant_pipeline_role(conn: psycopg.Connection[tuple[object, ...]], role: str, password: str) -> None:
    """Create (or update) the login role ``role`` with ``password`` and grant it exactly what
    ``roles/pipeline_role.sql`` lists, in one transaction; run as the owner after every migration."""
    if not password:
        raise RoleError(f"give pipeline role {role!r} a password (on stdin); an empty one is refused")
    text = resources.files("etlml.warehouse").joinpath("roles", "pipeline_role.sql").read_text("utf-8")
    with conn.transaction():
        exists = _refuse_unless_ordinary(conn, role)
        # the SCRAM verifier, computed here (as psql's \password does): the password itself is in
        # no statement, so no server log (log_statement = ddl) can record it
        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
        )
        database = conn.execute("SELECT current_database()").fetchone()
        assert database is not None
        grants = sql.SQL(text).format(role=sql.Identifier(role), database=sql.Identifier(str(database[0])))
        conn.execute(grants)
