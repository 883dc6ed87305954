"""Settings of the landing and stream sources and the quality gate: defaults, and refusals that say
what to fix."""

from datetime import timedelta

import pytest

from etlml import settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ETLML_SOURCE",
        "ETLML_LANDING_ROOT",
        "ETLML_MAX_FUTURE_SKEW_SECONDS",
        "ETLML_MAX_REJECTED_SHARE",
        "ETLML_STREAM_CONN_ID",
        "ETLML_STREAM_KEY",
        "ETLML_STREAM_GRACE_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_keep_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", "/srv/airflow")
    cfg = settings.load()
    assert cfg.source == "simulator"
    assert cfg.landing_root == "file:///srv/airflow/etlml-landing"
    assert cfg.max_future_skew == timedelta(minutes=5)
    assert cfg.max_rejected_share == 0.05


def test_landing_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETLML_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", "s3://bucket/landing")
    monkeypatch.setenv("ETLML_MAX_FUTURE_SKEW_SECONDS", "90")
    monkeypatch.setenv("ETLML_MAX_REJECTED_SHARE", "0")
    cfg = settings.load()
    assert (cfg.source, cfg.landing_root) == ("landing", "s3://bucket/landing")
    assert (cfg.max_future_skew, cfg.max_rejected_share) == (timedelta(seconds=90), 0.0)


def test_stream_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETLML_SOURCE", "redis_stream")
    cfg = settings.load()
    assert (cfg.source, cfg.stream_conn_id, cfg.stream_key) == ("redis_stream", "events", "etlml:events")
    assert cfg.stream_grace == timedelta(seconds=30)
    monkeypatch.setenv("ETLML_STREAM_CONN_ID", "clicks")
    monkeypatch.setenv("ETLML_STREAM_KEY", "shop:clicks")
    monkeypatch.setenv("ETLML_STREAM_GRACE_SECONDS", "2.5")
    cfg = settings.load()
    assert (cfg.stream_conn_id, cfg.stream_key, cfg.stream_grace) == (
        "clicks",
        "shop:clicks",
        timedelta(seconds=2.5),
    )


def test_the_stream_connection_is_the_redis_providers_url() -> None:
    from airflow.sdk import Connection

    from etlml.ingest.stream import client_options

    opts = client_options(Connection.from_uri("redis://u:p%40ss@events:6380/3", conn_id="events"))
    assert (opts["host"], opts["port"], opts["db"], opts["username"], opts["password"]) == (
        "events",
        6380,
        3,
        "u",
        "p@ss",
    )
    plain = client_options(Connection.from_uri("redis://events", conn_id="events"))
    assert (plain["port"], plain["db"], plain["password"]) == (6379, 0, None)
    with pytest.raises(settings.SettingsError, match="database must be a number"):
        client_options(Connection.from_uri("redis://events:6379/zero", conn_id="events"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ETLML_SOURCE", "files", "ETLML_SOURCE must be one of simulator, landing, redis_stream"),
        ("ETLML_STREAM_GRACE_SECONDS", "-5", "ETLML_STREAM_GRACE_SECONDS must be a number"),
        ("ETLML_STREAM_GRACE_SECONDS", "30s", "ETLML_STREAM_GRACE_SECONDS"),
        ("ETLML_MAX_REJECTED_SHARE", "5%", r"ETLML_MAX_REJECTED_SHARE must be a number in \[0, 1\]"),
        ("ETLML_MAX_REJECTED_SHARE", "1.5", "ETLML_MAX_REJECTED_SHARE"),
        ("ETLML_MAX_FUTURE_SKEW_SECONDS", "-1", "ETLML_MAX_FUTURE_SKEW_SECONDS"),
        ("ETLML_MAX_FUTURE_SKEW_SECONDS", "nan", "ETLML_MAX_FUTURE_SKEW_SECONDS"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingsError, match=message):
        settings.load()


def test_the_file_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETLML_MAX_FILE_BYTES", raising=False)
    assert settings.load().max_file_bytes == 1024**3
    monkeypatch.setenv("ETLML_MAX_FILE_BYTES", "5000000")
    assert settings.load().max_file_bytes == 5_000_000
    for bad in ("1GB", "0", "-5", "1.5"):
        monkeypatch.setenv("ETLML_MAX_FILE_BYTES", bad)
        with pytest.raises(
            settings.SettingsError, match="ETLML_MAX_FILE_BYTES must be a whole number of bytes"
        ):
            settings.load()


@pytest.mark.parametrize("text", ["0", "-1", "x", "nan", "4000"])
def test_a_bad_label_window_is_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", text)
    with pytest.raises(settings.SettingsError, match="ETLML_LABEL_WINDOW_DAYS must be"):
        settings.load()


def test_label_window_and_registry_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETLML_LABEL_WINDOW_DAYS", raising=False)
    monkeypatch.delenv("ETLML_REGISTRY_CONN_ID", raising=False)
    cfg = settings.load()
    assert (cfg.label_window, cfg.registry_conn_id) == (timedelta(days=7), "warehouse_registry")
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", "0.5")
    monkeypatch.setenv("ETLML_REGISTRY_CONN_ID", "owner")
    cfg = settings.load()
    assert (cfg.label_window, cfg.registry_conn_id) == (timedelta(hours=12), "owner")


@pytest.mark.parametrize("given", ["2026-11-26T08:00:00", "tomorrow", "0001-01-01T00:00:00+01:00"])
def test_a_start_date_without_offset_or_out_of_range_is_refused(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("ETLML_START_DATE", given)
    with pytest.raises(settings.SettingsError, match="ETLML_START_DATE must be"):
        settings.start_date()


def test_the_freshness_deadline_is_15_minutes_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETLML_FINISH_WITHIN_MINUTES", raising=False)
    assert settings.finish_within() == timedelta(minutes=15)
    monkeypatch.setenv("ETLML_FINISH_WITHIN_MINUTES", "0.5")
    assert settings.finish_within() == timedelta(seconds=30)
    monkeypatch.setenv("ETLML_FINISH_WITHIN_MINUTES", "0")
    assert settings.finish_within() == timedelta(0)


@pytest.mark.parametrize("text", ["-1", "soon", "inf", "20000"])
def test_a_bad_freshness_deadline_is_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("ETLML_FINISH_WITHIN_MINUTES", text)
    with pytest.raises(settings.SettingsError, match="ETLML_FINISH_WITHIN_MINUTES must be"):
        settings.finish_within()
