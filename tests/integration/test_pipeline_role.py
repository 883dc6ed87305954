"""The role the DAGs connect as in Docker Compose: it owns nothing and may only read and write what
the pipeline needs. It is made here the way ``airflow-init`` makes it (``etlml db grant-pipeline-role``,
the owner's connection, the password on stdin; the ``pipeline_role`` fixture), then what it may and
may not do is tried on the real PostgreSQL. tests/dags/test_pipeline_role_runs.py runs the DAGs as it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

import psycopg
import pytest
from psycopg import sql

from etlml import cli
from etlml.steps.init_schema import check_schema, migrate_schema
from etlml.warehouse import roles, schema
from tests.conftest import ADMIN_DSN, grant_pipeline_role, url_as

pytestmark = pytest.mark.db


def test_the_pipeline_role_reads_the_registry_and_checks_the_schema(
    pipeline_role: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """What 00_init_schema and the CLI's read commands do; tests/dags/test_pipeline_role_runs.py runs
    the DAGs as the role."""
    assert migrate_schema() == []  # nothing to migrate, and no CREATE needed to find that out
    assert check_schema().champion == "baseline_v1"
    assert cli.main(["models", "list", "--json"]) == 0
    assert [v["model_version"] for v in json.loads(capsys.readouterr().out)] == ["baseline_v1"]


FORBIDDEN = [
    "TRUNCATE processed_data",
    "TRUNCATE predictions",
    "TRUNCATE model_events",
    "TRUNCATE model_versions CASCADE",
    "DROP TABLE predictions",
    "DROP TABLE run_audit",
    "ALTER TABLE processed_data ADD COLUMN x int",
    "ALTER TABLE model_events DISABLE TRIGGER model_events_no_change",
    "CREATE TABLE scratch (x int)",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DELETE FROM model_events",
    "DELETE FROM schema_migrations",
    "UPDATE model_aliases SET model_version = 'baseline_v1'",
    "INSERT INTO model_events (event, actor) VALUES ('register', 'me')",
    "DELETE FROM run_audit",
    "CREATE INDEX ON processed_data (f1)",
]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_the_pipeline_role_cannot_empty_drop_or_alter_anything(
    pipeline_role: tuple[str, str], fresh_migrated: str, statement: str
) -> None:
    role, password = pipeline_role
    with (
        psycopg.connect(url_as(role, password, fresh_migrated)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


def test_the_pipeline_role_owns_nothing_and_has_no_power_over_roles(
    pipeline_role: tuple[str, str], fresh_migrated: str
) -> None:
    role, _ = pipeline_role
    owned = """
        SELECT 'relation ' || relname FROM pg_class WHERE relowner = r.oid
        UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proowner = r.oid
        UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typowner = r.oid
        UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = r.oid
        UNION ALL SELECT 'database ' || datname FROM pg_database WHERE datdba = r.oid
    """
    with psycopg.connect(fresh_migrated) as owner:
        row = owner.execute(
            f"SELECT array(SELECT * FROM ({owned}) AS o), r.rolsuper, r.rolcreatedb, r.rolcreaterole, "
            "r.rolbypassrls, r.rolreplication, pg_has_role(r.oid, 'pg_read_all_data', 'USAGE') "
            "FROM pg_roles r WHERE r.rolname = %s",
            (role,),
        ).fetchone()
    assert row == ([], False, False, False, False, False, False)


def test_a_pending_migration_under_the_pipeline_role_says_who_migrates(
    pipeline_role: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """00_init_schema under the pipeline role cannot migrate; it fails without retries, saying how."""
    extra = schema.Migration(99, "later", "CREATE TABLE later_one (x int)")
    shipped = schema.available()
    monkeypatch.setattr(schema, "available", lambda: [*shipped, extra])
    with pytest.raises(schema.MigrationError, match=r"may not change the schema.*airflow-init"):
        migrate_schema()


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a stored ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` is of ``password``
    (RFC 5802, as PostgreSQL computes it). The test server trusts every login, so logging in proves
    nothing about a password; the verifier does."""
    scheme, params, keys = verifier.split("$")
    iterations, salt = params.split(":")
    stored_key, server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return scheme == "SCRAM-SHA-256" and (
        base64.b64encode(hashlib.sha256(client_key).digest()).decode(),
        base64.b64encode(hmac.new(salted, b"Server Key", "sha256").digest()).decode(),
    ) == (stored_key, server_key)


def stored_verifier(role: str) -> str:
    with psycopg.connect(ADMIN_DSN) as admin:
        row = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    assert row is not None
    return str(row[0])


class RecordingConnection(psycopg.Connection[Any]):
    """A connection that keeps the text of every statement it sends."""

    sent: list[str]

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(query.as_string(self) if isinstance(query, sql.Composable) else str(query))
        return super().execute(query, *args, **kwargs)


def test_the_password_is_stored_as_given_and_never_sent_in_clear(
    pipeline_role: tuple[str, str], fresh_migrated: str
) -> None:
    """The server gets a SCRAM verifier computed by the client (as psql's \\password does), so the
    password is in no statement that a server log (log_statement = ddl) could record."""
    role, password = pipeline_role
    assert scram_matches(stored_verifier(role), password)
    new = secrets.token_urlsafe(24)
    with RecordingConnection.connect(fresh_migrated) as owner:
        owner.sent = []
        roles.grant_pipeline_role(owner, role, new)
    assert any(f'ALTER ROLE "{role}"' in q for q in owner.sent)
    assert not any(new in q for q in owner.sent)
    assert scram_matches(stored_verifier(role), new) and not scram_matches(stored_verifier(role), password)


def test_granting_again_changes_the_password_and_keeps_the_grants(
    pipeline_role: tuple[str, str], fresh_migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """airflow-init runs on every `docker compose up`: granting is idempotent, the password follows .env."""
    role, old = pipeline_role
    new = secrets.token_urlsafe(24)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", url_as("postgres", "", fresh_migrated))
    assert grant_pipeline_role(role, new, monkeypatch) == 0
    assert scram_matches(stored_verifier(role), new) and not scram_matches(stored_verifier(role), old)
    with psycopg.connect(url_as(role, new, fresh_migrated)) as conn:
        assert conn.execute("SELECT count(*) FROM model_versions").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE processed_data")


@pytest.mark.parametrize("role", ["postgres", "pg_read_all_data", "bad name", ""])
def test_the_owner_or_a_bad_name_is_refused_as_the_pipeline_role(
    fresh_migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], role: str
) -> None:
    assert grant_pipeline_role(role, secrets.token_urlsafe(24), monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("etlml: ") and len(err.strip().splitlines()) == 1


def test_an_empty_password_is_refused(
    fresh_migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert grant_pipeline_role("etlml_pipeline_nopass", "", monkeypatch) == 2
    assert "password" in capsys.readouterr().err
    with psycopg.connect(fresh_migrated) as owner:
        found = owner.execute("SELECT 1 FROM pg_roles WHERE rolname = 'etlml_pipeline_nopass'").fetchone()
    assert found is None
