"""Settings of the landing source and the quality gate: defaults, and refusals that say what to fix."""

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


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ETLML_SOURCE", "files", "ETLML_SOURCE must be one of simulator, landing"),
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
