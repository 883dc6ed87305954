"""The one place that reads etlml's environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BATCH_SIZE = 200
DEFAULT_SEED = 20_240_601
WAREHOUSE_CONN_ID = "warehouse"


@dataclass(frozen=True)
class Settings:
    """Runtime configuration, read once per call of :func:`load`.

    ``storage_root``: where run folders with intermediate Parquet files live; any URL that
    Airflow's ``ObjectStoragePath`` understands (``file:///...`` by default, ``s3://bucket/prefix``).
    ``warehouse_conn_id``: the Airflow connection of the warehouse database, so
    ``AIRFLOW_CONN_WAREHOUSE`` configures it the usual Airflow way.
    ``source_seed``: seed of the simulated upstream source; with the data interval it fixes every event.
    """

    storage_root: str
    warehouse_conn_id: str
    source_seed: int


def _default_storage_root() -> str:
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(airflow_home, "etlml-storage").resolve().as_uri()


def load() -> Settings:
    """Read the environment; called at run time, never at DAG parse time."""
    return Settings(
        storage_root=os.environ.get("ETLML_STORAGE_ROOT") or _default_storage_root(),
        warehouse_conn_id=os.environ.get("ETLML_WAREHOUSE_CONN_ID") or WAREHOUSE_CONN_ID,
        source_seed=int(os.environ.get("ETLML_SOURCE_SEED") or DEFAULT_SEED),
    )
