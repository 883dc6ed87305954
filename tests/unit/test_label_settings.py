"""Settings of the ground truth: the label source, window, the simulator's label delay and shift;
defaults, and refusals that say the expected form."""

from datetime import timedelta

import pytest

from etlml import settings
from etlml.errors import SettingsError
from etlml.ingest import source
from etlml.ingest.landing import LandingFileSource
from etlml.ingest.simulator import SimulatedLabels, SimulatedSource


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ETLML_SOURCE",
        "ETLML_LABEL_SOURCE",
        "ETLML_LABEL_WINDOW_DAYS",
        "ETLML_SIMULATOR_LABEL_DELAY",
        "ETLML_SIMULATOR_SHIFT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    cfg = settings.load()
    assert cfg.label_source == "simulator"
    assert cfg.label_window == timedelta(days=7)
    assert cfg.simulator_label_delay == 3
    assert cfg.simulator_shift == {}


@pytest.mark.parametrize(
    ("events", "labels"), [("simulator", "simulator"), ("landing", "landing"), ("redis_stream", "landing")]
)
def test_labels_follow_the_event_source_unless_told(
    monkeypatch: pytest.MonkeyPatch, events: str, labels: str
) -> None:
    monkeypatch.setenv("ETLML_SOURCE", events)
    assert settings.load().label_source == labels
    monkeypatch.setenv("ETLML_LABEL_SOURCE", "simulator")
    assert settings.load().label_source == "simulator"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("f3=+20", {"f3": 20.0}),
        ("f1=-3,f3=+20", {"f1": -3.0, "f3": 20.0}),
        (" f2 = 0.5 ", {"f2": 0.5}),
        ("f3=1e1", {"f3": 10.0}),
    ],
)
def test_shift_forms(monkeypatch: pytest.MonkeyPatch, text: str, expected: dict[str, float]) -> None:
    monkeypatch.setenv("ETLML_SIMULATOR_SHIFT", text)
    assert settings.load().simulator_shift == expected


@pytest.mark.parametrize(
    "text", ["f4=1", "f3", "f3=", "f3=+x", "f3=1,f3=2", "f3=inf", "f3=nan", "f3:+20", "=1"]
)
def test_a_bad_shift_says_the_expected_form(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("ETLML_SIMULATOR_SHIFT", text)
    with pytest.raises(SettingsError) as error:
        settings.load()
    message = str(error.value)
    assert "ETLML_SIMULATOR_SHIFT must be FEATURE=±NUMBER" in message
    assert "e.g. f3=+20 or f1=-3,f3=+20" in message
    assert repr(text) in message


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ETLML_LABEL_SOURCE", "s3", "ETLML_LABEL_SOURCE must be one of simulator, landing"),
        ("ETLML_SIMULATOR_LABEL_DELAY", "0", "from 1 to 1008"),
        ("ETLML_SIMULATOR_LABEL_DELAY", "1009", "from 1 to 1008"),
        ("ETLML_SIMULATOR_LABEL_DELAY", "two", "ETLML_SIMULATOR_LABEL_DELAY must be an integer"),
        ("ETLML_LABEL_WINDOW_DAYS", "0", "ETLML_LABEL_WINDOW_DAYS must be more than 0 days"),
        ("ETLML_LABEL_WINDOW_DAYS", "x", "ETLML_LABEL_WINDOW_DAYS must be a number in"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=says):
        settings.load()


def test_the_delay_must_fit_in_the_label_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", "1")
    monkeypatch.setenv("ETLML_SIMULATOR_LABEL_DELAY", "144")
    assert settings.load().simulator_label_delay == 144
    monkeypatch.setenv("ETLML_SIMULATOR_LABEL_DELAY", "145")
    with pytest.raises(SettingsError, match="from 1 to 144"):
        settings.load()


def test_the_sources_follow_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("ETLML_SIMULATOR_SHIFT", "f3=+20")
    monkeypatch.setenv("ETLML_SIMULATOR_LABEL_DELAY", "2")
    cfg = settings.load()
    events = source.from_settings(cfg, 50)
    assert isinstance(events, SimulatedSource)
    assert events.shift == {"f3": 20.0}
    labels = source.labels_from_settings(cfg, 50)
    assert isinstance(labels, SimulatedLabels)
    assert (labels.delay, labels.source.shift, labels.source.events_per_interval) == (2, {"f3": 20.0}, 50)
    monkeypatch.setenv("ETLML_LABEL_SOURCE", "landing")
    landing = source.labels_from_settings(settings.load(), 50)
    assert isinstance(landing, LandingFileSource)
    assert landing.prefix == "labels"
