"""The one place that reads etlml's environment variables.

A value etlml cannot use raises :class:`~etlml.errors.SettingsError` naming the variable.
"""

from __future__ import annotations

import getpass
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from etlml.errors import SettingsError

DEFAULT_SEED = 20_240_601
WAREHOUSE_CONN_ID = "warehouse"
STREAM_CONN_ID = "events"
DEFAULT_STREAM_KEY = "etlml:events"
DEFAULT_STREAM_GRACE_SECONDS = 30.0
Source = Literal["simulator", "landing", "redis_stream"]
SOURCES: tuple[Source, ...] = ("simulator", "landing", "redis_stream")
DEFAULT_MAX_FUTURE_SKEW_SECONDS = 300.0
DEFAULT_MAX_REJECTED_SHARE = 0.05
DEFAULT_START_DATE = "2026-01-01T00:00:00Z"
"""Where the pipeline starts when ``ETLML_START_DATE`` is not set: every interval since is run (set it)."""
DEFAULT_STORAGE_RETENTION_DAYS = 7
"""Days ``90_housekeeping`` keeps a finished run's folder of intermediate files."""
DEFAULT_MAX_FILE_BYTES = 1024**3


@dataclass(frozen=True)
class Settings:
    """Runtime configuration, read once per call of :func:`load`.

    ``storage_root``: where run folders with intermediate Parquet files live; any URL that
    Airflow's ``ObjectStoragePath`` understands (``file:///...`` by default, ``s3://bucket/prefix``).
    ``warehouse_conn_id``: the Airflow connection of the warehouse database, so
    ``AIRFLOW_CONN_WAREHOUSE`` configures it the usual Airflow way.
    ``source_seed``: seed of the simulated upstream source; with the data interval it fixes every event.
    ``source``: ``simulator`` (default), ``landing`` (files under ``landing_root``, see
    ``etlml.ingest.landing``) or ``redis_stream`` (a Redis stream, see ``etlml.ingest.stream``).
    ``landing_root``: ``ObjectStoragePath`` URL of the landing area, partitioned ``YYYY-MM-DD/HHMM/``.
    ``max_future_skew``: how far after the moment ``extract`` runs (and the interval's end) an event's
    timestamp may lie before it is rejected as in the future rather than outside the interval.
    ``max_rejected_share``: the quality gate; a run that rejects a larger share of its records fails.
    ``storage_retention``: how long ``90_housekeeping`` keeps a finished run's folder.
    ``max_file_bytes``: the largest landing file read, in bytes as stored and, for gzip, decompressed;
    a larger one is quarantined as ``file_too_large``.
    ``stream_conn_id``: the Airflow connection of the Redis server holding the event stream
    (``AIRFLOW_CONN_EVENTS=redis://host:6379/0``); ``stream_key``: the stream's key.
    ``stream_grace``: how long after an interval's end (by the Redis server's clock or the stream's
    last entry id) the interval counts as closed and is read; also how far an event's own ``ts_utc``
    may lie outside its arrival interval before it is quarantined.
    """

    storage_root: str
    warehouse_conn_id: str
    source_seed: int
    source: Source = "simulator"
    landing_root: str = ""
    max_future_skew: timedelta = timedelta(seconds=DEFAULT_MAX_FUTURE_SKEW_SECONDS)
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE
    storage_retention: timedelta = timedelta(days=DEFAULT_STORAGE_RETENTION_DAYS)
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    stream_conn_id: str = STREAM_CONN_ID
    stream_key: str = DEFAULT_STREAM_KEY
    stream_grace: timedelta = timedelta(seconds=DEFAULT_STREAM_GRACE_SECONDS)


def _default_storage_root() -> str:
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(airflow_home, "etlml-storage").resolve().as_uri()


def _default_landing_root() -> str:
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(airflow_home, "etlml-landing").resolve().as_uri()


def _source() -> Source:
    value = os.environ.get("ETLML_SOURCE") or "simulator"
    for known in SOURCES:
        if value == known:
            return known
    raise SettingsError(f"ETLML_SOURCE must be one of {', '.join(SOURCES)}, got {value!r}")


def _number(name: str, default: float, low: float, high: float) -> float:
    text = os.environ.get(name) or str(default)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise SettingsError(f"{name} must be a number in [{low:g}, {high:g}], got {text!r}")
    return value


def _integer(name: str, default: int) -> int:
    text = os.environ.get(name) or str(default)
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {text!r}") from None


def _byte_count(name: str, default: int) -> int:
    text = os.environ.get(name) or str(default)
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise SettingsError(
            f"{name} must be a whole number of bytes, at least 1 (e.g. 1073741824 for 1 GiB), got {text!r}"
        )
    return int(text)


def load() -> Settings:
    """Read the environment; called at run time, never at DAG parse time."""
    return Settings(
        storage_root=os.environ.get("ETLML_STORAGE_ROOT") or _default_storage_root(),
        warehouse_conn_id=os.environ.get("ETLML_WAREHOUSE_CONN_ID") or WAREHOUSE_CONN_ID,
        source_seed=_integer("ETLML_SOURCE_SEED", DEFAULT_SEED),
        source=_source(),
        landing_root=os.environ.get("ETLML_LANDING_ROOT") or _default_landing_root(),
        max_future_skew=timedelta(
            seconds=_number("ETLML_MAX_FUTURE_SKEW_SECONDS", DEFAULT_MAX_FUTURE_SKEW_SECONDS, 0, 10**9)
        ),
        max_rejected_share=_number("ETLML_MAX_REJECTED_SHARE", DEFAULT_MAX_REJECTED_SHARE, 0, 1),
        storage_retention=timedelta(
            days=_number("ETLML_STORAGE_RETENTION_DAYS", DEFAULT_STORAGE_RETENTION_DAYS, 0, 36_500)
        ),
        max_file_bytes=_byte_count("ETLML_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES),
        stream_conn_id=os.environ.get("ETLML_STREAM_CONN_ID") or STREAM_CONN_ID,
        stream_key=os.environ.get("ETLML_STREAM_KEY") or DEFAULT_STREAM_KEY,
        stream_grace=timedelta(
            seconds=_number("ETLML_STREAM_GRACE_SECONDS", DEFAULT_STREAM_GRACE_SECONDS, 0, 86_400)
        ),
    )


def start_date() -> datetime:
    """``ETLML_START_DATE``: the pipeline's first data interval starts at or after it, and the scheduler
    runs every interval from there on, in order (catching up after downtime). The one setting read
    when the DAG file is parsed. ISO-8601 with a UTC offset; default :data:`DEFAULT_START_DATE`."""
    text = os.environ.get("ETLML_START_DATE") or DEFAULT_START_DATE
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        raise SettingsError(
            f"ETLML_START_DATE must be an ISO-8601 date and time with a UTC offset, e.g. "
            f"2026-11-26T08:00:00Z, got {text!r}"
        )
    return value.astimezone(UTC)


def actor() -> str:
    """Who changes the model registry from the CLI: ``ETLML_ACTOR``, else the login name."""
    return os.environ.get("ETLML_ACTOR") or getpass.getuser()


DEFAULT_PSI_WARN = 0.1
DEFAULT_PSI_ALERT = 0.25
DEFAULT_LABEL_WINDOW_DAYS = 7.0
ALERTS_CONN_ID = "etlml_alerts"
"""The Airflow connection alerts are posted to when it exists (an HTTP webhook or a Slack webhook)."""


@dataclass(frozen=True)
class Monitoring:
    """What ``30_monitor`` needs: the PSI thresholds of a feature's drift status (``warn`` from
    ``psi_warn`` on, ``alert`` from ``psi_alert`` on), and how far back labels that changed are
    looked for (``label_window``)."""

    psi_warn: float = DEFAULT_PSI_WARN
    psi_alert: float = DEFAULT_PSI_ALERT
    label_window: timedelta = timedelta(days=DEFAULT_LABEL_WINDOW_DAYS)


def monitoring() -> Monitoring:
    """Read ``ETLML_PSI_WARN``, ``ETLML_PSI_ALERT`` and ``ETLML_LABEL_WINDOW_DAYS``."""
    warn = _number("ETLML_PSI_WARN", DEFAULT_PSI_WARN, 0, 100)
    alert = _number("ETLML_PSI_ALERT", DEFAULT_PSI_ALERT, 0, 100)
    if not warn < alert:
        raise SettingsError(
            f"ETLML_PSI_WARN ({warn:g}) must be below ETLML_PSI_ALERT ({alert:g}): a drift status goes "
            "ok -> warn -> alert as the PSI grows (defaults 0.1 and 0.25)"
        )
    days = _number("ETLML_LABEL_WINDOW_DAYS", DEFAULT_LABEL_WINDOW_DAYS, 0, 366)
    return Monitoring(psi_warn=warn, psi_alert=alert, label_window=timedelta(days=days))
