"""The tasks of DAG ``00_init_schema`` (apply the migrations, then check), and the preflight check
``extract`` runs before a run writes anything."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from etlml import settings
from etlml.models import registry, serving
from etlml.models.serving import Serving
from etlml.models.spec import VersionSpec
from etlml.warehouse import connection, schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchemaStatus:
    """The warehouse after ``check``: migrations applied, and the champion that serves."""

    migrations: int
    champion: str

    def to_xcom(self) -> dict[str, object]:
        return {"migrations": self.migrations, "champion": self.champion}


def preflight(conn_id: str) -> tuple[Serving, VersionSpec]:
    """Check the warehouse before a run writes anything: every migration applied, the aliases read
    (once), the champion loadable (its artifact verified). Fails with a message that says what to do
    when the connection is missing, the server does not answer, migrations are not applied, or no
    usable champion is registered. Returns the versions to serve and the champion's record."""
    with connection.connect(conn_id) as conn:
        schema.check(conn)
        served = serving.resolve(conn)
        return served, registry.verify(conn, served.champion)


def migrate_schema() -> list[str]:
    """Apply pending warehouse migrations; return the names of those applied."""
    with connection.connect(settings.load().warehouse_conn_id) as conn:
        return [f"{m.version:04d}_{m.name}" for m in schema.migrate(conn)]


def check_schema() -> SchemaStatus:
    """Sanity check after migrating: all migrations applied, tables present, a usable champion."""
    conn_id = settings.load().warehouse_conn_id
    served, _ = preflight(conn_id)
    with connection.connect(conn_id) as conn:
        applied = len(schema.applied(conn))
    log.info("warehouse schema at migration %d, champion %s", applied, served.champion)
    return SchemaStatus(applied, served.champion)
