"""The one place that reads etlml's environment variables.

A value etlml cannot use raises :class:`~etlml.errors.SettingsError` naming the variable.
"""

from __future__ import annotations

import getpass
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from etlml import DEFAULT_MAX_ABS_VALUE, FEATURES
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
DEFAULT_DEDUP_WINDOW_DAYS = 1
"""How far either side of an interval ``load_processed`` looks for an event id another interval holds."""
PARTITIONS_AHEAD_DAYS = 2
"""Day partitions ``90_housekeeping`` keeps created ahead of today."""
LabelSource = Literal["simulator", "landing"]
LABEL_SOURCES: tuple[LabelSource, ...] = ("simulator", "landing")
DEFAULT_LABEL_WINDOW_DAYS = 7
"""How far back (days before a run's interval) labels find their events, and monitoring recomputes."""
DEFAULT_SIMULATOR_LABEL_DELAY = 3
"""Intervals after its events' interval that the simulator gives their labels."""
INTERVAL = timedelta(minutes=10)
"""The pipeline's data interval (its schedule is ``*/10 * * * *``)."""
_SHIFT_FORM = (
    f"FEATURE=±NUMBER[,FEATURE=±NUMBER...] with FEATURE one of {', '.join(FEATURES)}, each once, "
    "e.g. f3=+20 or f1=-3,f3=+20"
)
DEFAULT_FINISH_WITHIN_MINUTES = 15
"""A run of ``10_etl_ml_pipeline`` not finished this long after its interval's end misses its deadline."""
REGISTRY_CONN_ID = "warehouse_registry"
"""The connection ``40_train_challenger`` changes the registry through (the owner's), if it is defined."""


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
    ``dedup_window``: an event id stored under another interval starting within this distance of
    the run's interval is quarantined as ``redelivered``; one held only further away is not found
    and is stored again (the check reads only the day partitions within the window).
    ``retention``: ``90_housekeeping`` drops the day partitions (events, predictions, rejected
    records and the events' labels together) older than this; ``None`` keeps everything.
    ``stream_grace``: how long after an interval's end (by the Redis server's clock or the stream's
    last entry id) the interval counts as closed and is read; also how far an event's own ``ts_utc``
    may lie outside its arrival interval before it is quarantined.
    ``label_source``: where ``15_ingest_labels`` reads labels, ``simulator`` (the simulator's ground
    truth) or ``landing`` (``<landing_root>/labels/YYYY-MM-DD/HHMM/``); by default ``simulator`` when
    ``source`` is, else ``landing``. ``label_window``: how far before a run's interval a label's
    event may lie (older: quarantined as ``unknown_event``); also how far back monitoring
    recomputes and ``etlml models compare`` compares by default. ``simulator_label_delay``: the simulator
    gives the labels of interval I in interval I + this many intervals. ``simulator_shift``: feature
    -> constant added to the simulated feature (drift for demos and tests).
    ``registry_conn_id``: the Airflow connection a DAG that changes the registry (``40_train_challenger``)
    uses, when it is defined; otherwise the warehouse connection.
    ``max_abs_value``: the largest magnitude of a feature (events) or ``y_true`` (labels) the contracts
    accept; beyond it a record is quarantined as ``out_of_range``.
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
    dedup_window: timedelta = timedelta(days=DEFAULT_DEDUP_WINDOW_DAYS)
    retention: timedelta | None = None
    label_source: LabelSource = "simulator"
    label_window: timedelta = timedelta(days=DEFAULT_LABEL_WINDOW_DAYS)
    simulator_label_delay: int = DEFAULT_SIMULATOR_LABEL_DELAY
    simulator_shift: dict[str, float] = field(default_factory=dict)
    registry_conn_id: str = REGISTRY_CONN_ID
    max_abs_value: float = DEFAULT_MAX_ABS_VALUE


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


def _label_source(source: Source) -> LabelSource:
    value = os.environ.get("ETLML_LABEL_SOURCE") or ("simulator" if source == "simulator" else "landing")
    for known in LABEL_SOURCES:
        if value == known:
            return known
    raise SettingsError(f"ETLML_LABEL_SOURCE must be one of {', '.join(LABEL_SOURCES)}, got {value!r}")


def _shift() -> dict[str, float]:
    """``ETLML_SIMULATOR_SHIFT``: ``f3=+20`` or ``f1=-3,f3=+20`` -> ``{"f1": -3.0, "f3": 20.0}``."""
    text = os.environ.get("ETLML_SIMULATOR_SHIFT") or ""
    shift: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        feature, equals, number = (p.strip() for p in part.partition("="))
        try:
            value = float(number) if equals and number.lstrip("+-")[:1].isdigit() else math.nan
        except ValueError:
            value = math.nan
        if feature not in FEATURES or feature in shift or not math.isfinite(value):
            raise SettingsError(f"ETLML_SIMULATOR_SHIFT must be {_SHIFT_FORM}, got {text!r}")
        shift[feature] = value
    return shift


def _label_delay(window: timedelta) -> int:
    delay = _integer("ETLML_SIMULATOR_LABEL_DELAY", DEFAULT_SIMULATOR_LABEL_DELAY)
    if delay < 1 or INTERVAL * delay > window:
        raise SettingsError(
            f"ETLML_SIMULATOR_LABEL_DELAY must be a whole number of 10-minute intervals from 1 to "
            f"{window // INTERVAL} (labels older than ETLML_LABEL_WINDOW_DAYS find no event), got {delay}"
        )
    return delay


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


def _retention() -> timedelta | None:
    text = os.environ.get("ETLML_RETENTION_DAYS") or ""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise SettingsError(
            "ETLML_RETENTION_DAYS must be a whole number of days, at least 1 (unset keeps everything), "
            f"got {text!r}"
        )
    return timedelta(days=int(text))


def _label_window() -> timedelta:
    days = _number("ETLML_LABEL_WINDOW_DAYS", DEFAULT_LABEL_WINDOW_DAYS, 0, 3650)
    if days <= 0:
        raise SettingsError(f"ETLML_LABEL_WINDOW_DAYS must be more than 0 days (e.g. 7), got {days:g}")
    return timedelta(days=days)


def load() -> Settings:
    """Read the environment; called at run time, never at DAG parse time."""
    source = _source()
    label_window = _label_window()
    return Settings(
        storage_root=os.environ.get("ETLML_STORAGE_ROOT") or _default_storage_root(),
        warehouse_conn_id=os.environ.get("ETLML_WAREHOUSE_CONN_ID") or WAREHOUSE_CONN_ID,
        source_seed=_integer("ETLML_SOURCE_SEED", DEFAULT_SEED),
        source=source,
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
        dedup_window=timedelta(days=_number("ETLML_DEDUP_WINDOW_DAYS", DEFAULT_DEDUP_WINDOW_DAYS, 0, 3_650)),
        retention=_retention(),
        label_source=_label_source(source),
        label_window=label_window,
        simulator_label_delay=_label_delay(label_window),
        simulator_shift=_shift(),
        registry_conn_id=os.environ.get("ETLML_REGISTRY_CONN_ID") or REGISTRY_CONN_ID,
        max_abs_value=_number("ETLML_MAX_ABS_VALUE", DEFAULT_MAX_ABS_VALUE, 1, 1e100),
    )


def start_date() -> datetime:
    """``ETLML_START_DATE``: the pipeline's first data interval starts at or after it, and the scheduler
    runs every interval from there on, in order (catching up after downtime). Read when the DAG files
    are parsed. ISO-8601 with a UTC offset; default :data:`DEFAULT_START_DATE`."""
    text = os.environ.get("ETLML_START_DATE") or DEFAULT_START_DATE
    try:
        value = datetime.fromisoformat(text)
        utc = value.astimezone(UTC) if value.utcoffset() is not None else None
    except (ValueError, OverflowError):  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        utc = None
    if utc is None:
        raise SettingsError(
            f"ETLML_START_DATE must be an ISO-8601 date and time with a UTC offset, e.g. "
            f"2026-11-26T08:00:00Z, got {text!r}"
        )
    return utc


def finish_within() -> timedelta:
    """``ETLML_FINISH_WITHIN_MINUTES``: the freshness deadline of ``10_etl_ml_pipeline``, how long after
    its interval's end a run must have finished (default :data:`DEFAULT_FINISH_WITHIN_MINUTES`; a
    fraction of a minute is allowed, 0 makes every run late). Read when the DAG file is parsed."""
    minutes = _number("ETLML_FINISH_WITHIN_MINUTES", DEFAULT_FINISH_WITHIN_MINUTES, 0, 7 * 24 * 60)
    return timedelta(minutes=minutes)


def actor() -> str:
    """Who changes the model registry from the CLI: ``ETLML_ACTOR``, else the login name."""
    return os.environ.get("ETLML_ACTOR") or getpass.getuser()


DEFAULT_PSI_WARN = 0.1
DEFAULT_PSI_ALERT = 0.25
DEFAULT_ESTIMATED_MAE_ALERT_RATIO = 1.5
"""An estimated MAE above this many times the version's validation MAE (its error estimator's
reference MAE) raises an alert."""
ALERTS_CONN_ID = "etlml_alerts"
"""The Airflow connection alerts are posted to when it exists (an HTTP webhook or a Slack webhook)."""


@dataclass(frozen=True)
class Monitoring:
    """What ``30_monitor`` needs: the PSI thresholds of a feature's drift status (``warn`` from
    ``psi_warn`` on, ``alert`` from ``psi_alert`` on), and how far back labels that changed are
    looked for (``label_window``); an estimated MAE above ``estimated_mae_alert_ratio`` times the
    version's validation MAE raises an alert."""

    psi_warn: float = DEFAULT_PSI_WARN
    psi_alert: float = DEFAULT_PSI_ALERT
    label_window: timedelta = timedelta(days=DEFAULT_LABEL_WINDOW_DAYS)
    estimated_mae_alert_ratio: float = DEFAULT_ESTIMATED_MAE_ALERT_RATIO


def monitoring() -> Monitoring:
    """Read ``ETLML_PSI_WARN``, ``ETLML_PSI_ALERT``, ``ETLML_LABEL_WINDOW_DAYS`` and
    ``ETLML_ESTIMATED_MAE_ALERT_RATIO``."""
    warn = _number("ETLML_PSI_WARN", DEFAULT_PSI_WARN, 0, 100)
    alert = _number("ETLML_PSI_ALERT", DEFAULT_PSI_ALERT, 0, 100)
    if not warn < alert:
        raise SettingsError(
            f"ETLML_PSI_WARN ({warn:g}) must be below ETLML_PSI_ALERT ({alert:g}): a drift status goes "
            "ok -> warn -> alert as the PSI grows (defaults 0.1 and 0.25)"
        )
    ratio = _number("ETLML_ESTIMATED_MAE_ALERT_RATIO", DEFAULT_ESTIMATED_MAE_ALERT_RATIO, 0.01, 1000)
    return Monitoring(
        psi_warn=warn, psi_alert=alert, label_window=_label_window(), estimated_mae_alert_ratio=ratio
    )


_SECRETS_BACKEND_VARIABLES = (
    "AIRFLOW__SECRETS__BACKEND",
    "AIRFLOW__SECRETS__BACKEND_CMD",
    "AIRFLOW__SECRETS__BACKEND_SECRET",
)


def connection_uri(conn_id: str) -> str | None:
    """``AIRFLOW_CONN_<CONN_ID>`` when it alone defines the Airflow connection ``conn_id`` as a URI,
    so it can be used without importing Airflow; ``None`` when Airflow must resolve it: the variable
    is unset or JSON, or a secrets backend is configured (Airflow asks that backend first)."""
    uri = (os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}") or "").strip()
    if not uri or uri.startswith("{") or _secrets_backend_configured():
        return None
    return uri


def _secrets_backend_configured() -> bool:
    """Whether Airflow's configuration (environment or ``airflow.cfg``) names a secrets backend."""
    if any(os.environ.get(name) for name in _SECRETS_BACKEND_VARIABLES):
        return True
    import configparser

    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    config = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        config.read(os.environ.get("AIRFLOW_CONFIG") or Path(home, "airflow.cfg"), encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return True  # unreadable: Airflow decides
    return bool(config.get("secrets", "backend", fallback="").strip())


def validate() -> None:
    """Read every setting a DAG file or a task reads (each public reader of this module that takes no
    argument: a new one is checked by default), raising :class:`SettingsError` on the first bad one.
    ``make demo`` calls it before starting anything."""
    for reader in readers():
        reader()


def readers() -> list[Callable[[], object]]:
    """The public functions of this module that read the environment and take no argument."""
    import inspect
    import sys

    module = sys.modules[__name__]
    found: list[Callable[[], object]] = []
    for name, value in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(value) or value.__module__ != __name__:
            continue
        if name in {"validate", "readers"}:
            continue
        required = [
            p for p in inspect.signature(value).parameters.values() if p.default is inspect.Parameter.empty
        ]
        if not required:
            found.append(value)
    return found
