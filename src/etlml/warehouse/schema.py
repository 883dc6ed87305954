"""The migrations runner: numbered SQL files (``migrations/NNNN_slug.sql``), applied once each and
recorded in ``schema_migrations``."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from etlml.errors import PermanentError
from etlml.warehouse.connection import query

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant shared by every migrating process: two `migrate` calls never interleave.
_LOCK_KEY = 4_242_001


class MigrationError(PermanentError, RuntimeError):
    """The migrations on disk and those recorded in the database disagree."""


@dataclass(frozen=True)
class Migration:
    """One ``NNNN_slug.sql`` file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """All migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files("etlml.warehouse").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise MigrationError(f"migration numbers must be distinct and start at 1 or above, found {versions}")
    return found


def applied(conn: psycopg.Connection[tuple[object, ...]]) -> dict[int, str]:
    """Version -> checksum of every recorded migration ({} on an empty database)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return {}
        cur.execute("SELECT version, checksum FROM schema_migrations")
        return {int(str(v)): str(c) for v, c in cur.fetchall()}


def _check_history(done: dict[int, str], shipped: list[Migration]) -> None:
    """Every applied migration is shipped unchanged, and none is pending below an applied one.

    Numbers may have gaps (branches number their migrations ahead of each other's), but a migration
    is never applied after a later-numbered one: the schema's history stays in number order."""
    by_version = {m.version: m for m in shipped}
    late = [m for m in shipped if done and m.version not in done and m.version < max(done)]
    if late:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in late)
        raise MigrationError(
            f"migrations {names} are numbered below migration {max(done)}, which the database already "
            "has; renumber them after it (a migration is never applied out of order)"
        )
    for version, checksum in sorted(done.items()):
        mig = by_version.get(version)
        if mig is None:
            raise MigrationError(
                f"the database has migration {version} which this code does not ship; "
                "deploy the newer etlml version instead of downgrading"
            )
        if mig.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{mig.name} changed after it was applied; "
                "add a new migration instead of editing an applied one"
            )


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied."""
    shipped = available()
    newly: list[Migration] = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute(query("create_schema_migrations"))
    for mig in shipped:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            done = applied(conn)
            _check_history(done, shipped)
            if mig.version in done:
                continue
            cur.execute(mig.sql.encode())
            cur.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (mig.version, mig.name, mig.checksum),
            )
            newly.append(mig)
    return newly


def pending(conn: psycopg.Connection[tuple[object, ...]]) -> list[Migration]:
    """Shipped migrations not yet applied; raises if the recorded history disagrees."""
    shipped = available()
    done = applied(conn)
    _check_history(done, shipped)
    return [m for m in shipped if m.version not in done]


REQUIRED_TABLES = (
    "schema_migrations",
    "model_versions",
    "model_aliases",
    "processed_data",
    "predictions",
    "rejected_events",
    "run_audit",
)


def check(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Raise :class:`MigrationError` unless every migration is applied and every table exists."""
    todo = pending(conn)
    if todo:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
        raise MigrationError(
            f"the warehouse lacks migrations {names}; run `etlml db migrate` or trigger DAG 00_init_schema"
        )
    with conn.cursor() as cur:
        cur.execute(query("missing_tables"), {"tables": list(REQUIRED_TABLES)})
        missing = [str(r[0]) for r in cur.fetchall()]
    if missing:
        raise MigrationError(f"the warehouse lacks tables {missing} although its migrations are recorded")
