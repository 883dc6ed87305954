"""Monitoring's settings, the intervals asset events name, and how an alert is addressed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from etlml import settings
from etlml.errors import SettingsError
from etlml.interval import Interval
from etlml.monitoring import alerts
from etlml.steps.monitor import extras_of, intervals_of

START = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ETLML_PSI_WARN", "ETLML_PSI_ALERT", "ETLML_LABEL_WINDOW_DAYS"):
        monkeypatch.delenv(name, raising=False)


def test_monitoring_defaults() -> None:
    assert settings.monitoring() == settings.Monitoring(0.1, 0.25, timedelta(days=7))


def test_monitoring_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETLML_PSI_WARN", "0.2")
    monkeypatch.setenv("ETLML_PSI_ALERT", "0.5")
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", "1.5")
    assert settings.monitoring() == settings.Monitoring(0.2, 0.5, timedelta(days=1.5))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ETLML_PSI_WARN", "0.3", "ETLML_PSI_WARN (0.3) must be below ETLML_PSI_ALERT (0.25)"),
        ("ETLML_PSI_ALERT", "0.1", "ETLML_PSI_WARN (0.1) must be below ETLML_PSI_ALERT (0.1)"),
        ("ETLML_PSI_ALERT", "high", "ETLML_PSI_ALERT must be a number in"),
        ("ETLML_PSI_WARN", "-1", "ETLML_PSI_WARN must be a number in"),
        ("ETLML_LABEL_WINDOW_DAYS", "nan", "ETLML_LABEL_WINDOW_DAYS must be a number in"),
    ],
)
def test_bad_monitoring_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings.monitoring()


def test_asset_events_name_distinct_intervals_oldest_first() -> None:
    later = Interval(START + timedelta(minutes=10), START + timedelta(minutes=20))
    first = Interval(START, START + timedelta(minutes=10))
    extras = [
        {"interval_start": later.start.isoformat(), "interval_end": later.end.isoformat(), "shard": 0},
        {"interval_start": later.start.isoformat(), "interval_end": later.end.isoformat(), "shard": 1},
        {"interval_start": first.start.isoformat(), "interval_end": first.end.isoformat()},
        {},  # an event made by hand in the UI names nothing
        {"interval_start": "yesterday", "interval_end": "today"},
    ]
    assert intervals_of(extras) == [first, later]


def test_a_labels_event_names_the_intervals_it_lists() -> None:
    """A ``labels`` event lists the intervals of the events whose labels it stored; with a
    ``predictions`` event of one of them, each is named once."""
    first = Interval(START, START + timedelta(minutes=10))
    later = Interval(START + timedelta(days=2), START + timedelta(days=2, minutes=10))
    bounds = [
        {"interval_start": i.start.isoformat(), "interval_end": i.end.isoformat()} for i in (later, first)
    ]
    labels = {"delivered_in": bounds[0], "intervals": bounds, "run": "15_ingest_labels/r"}
    assert intervals_of([labels, bounds[1]]) == [first, later]
    assert intervals_of([{"delivered_in": bounds[0], "intervals": []}]) == []  # stored nothing
    assert intervals_of([{"intervals": [{"interval_start": "soon"}, bounds[1]]}]) == [first]


class Event:
    def __init__(self, extra: dict[str, Any] | None) -> None:
        self.extra = extra


def test_the_triggering_events_extras_are_read_per_asset() -> None:
    events = {"predictions": [Event({"interval_start": "a"}), Event(None)], "other": [Event({"rows": 1})]}
    assert extras_of(events) == [{"interval_start": "a"}, {}, {"rows": 1}]
    assert extras_of(None) == [] and extras_of({}) == []


class Conn:
    """The attributes of an Airflow connection the notifier reads."""

    def __init__(self, conn_type: str, host: str | None, **other: Any) -> None:
        self.conn_id = "etlml_alerts"
        self.conn_type, self.host = conn_type, host
        self.port = other.get("port")
        self.schema = other.get("schema")
        self.login = other.get("login")
        self.password = other.get("password")
        self.extra_dejson = other.get("extra", {})


@pytest.mark.parametrize(
    ("conn", "url"),
    [
        (
            Conn("http", "alerts.example.com", port=8080, schema="hooks/etlml"),
            "http://alerts.example.com:8080/hooks/etlml",
        ),
        (
            Conn("https", "alerts.example.com", extra={"endpoint": "/v1/alert"}),
            "https://alerts.example.com/v1/alert",
        ),
        (Conn("http", "https://alerts.example.com/base/"), "https://alerts.example.com/base"),
    ],
)
def test_http_connection_gives_the_url_and_json(conn: Conn, url: str) -> None:
    got, body, headers = alerts._request(conn, "drift", "f3 drifted", {"psi": 1.5})
    assert got == url
    assert json.loads(body) == {
        "source": "etlml",
        "kind": "drift",
        "summary": "f3 drifted",
        "details": {"psi": 1.5},
    }
    assert "Authorization" not in headers


def test_http_login_is_basic_auth_and_slack_gets_text() -> None:
    _, _, headers = alerts._request(Conn("https", "h", login="u", password="p"), "drift", "s", {})
    assert headers["Authorization"] == "Basic dTpw"
    url, body, _ = alerts._request(Conn("slackwebhook", None, password="T1/B2/C3"), "deadline", "late", {})
    assert url == "https://hooks.slack.com/services/T1/B2/C3"
    assert json.loads(body) == {"text": "etlml deadline alert: late"}


def test_unusable_connections_say_what_to_set() -> None:
    with pytest.raises(alerts.AlertConfigError, match="has no host: set AIRFLOW_CONN_ETLML_ALERTS"):
        alerts._request(Conn("http", None), "drift", "s", {})
    with pytest.raises(alerts.AlertConfigError, match="has no webhook token"):
        alerts._request(Conn("slackwebhook", None), "drift", "s", {})
    with pytest.raises(alerts.AlertConfigError, match="over http"):
        alerts._post("file:///etc/passwd", b"{}", {})


def test_a_bad_threshold_fails_the_monitor_task_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from etlml.steps.monitor import monitor

    monkeypatch.setenv("ETLML_PSI_WARN", "0.3")
    with pytest.raises(AirflowFailException, match="must be below ETLML_PSI_ALERT"):
        monitor([])
