"""SimulatedSource: events are a pure function of seed, interval and batch size."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.records import EVENT

INTERVAL = Interval(datetime(2026, 11, 25, 18, 10, tzinfo=UTC), datetime(2026, 11, 25, 18, 20, tzinfo=UTC))


def test_same_interval_gives_identical_events() -> None:
    first = SimulatedSource(seed=7, events_per_interval=200).events(INTERVAL)
    again = SimulatedSource(seed=7, events_per_interval=200).events(INTERVAL)
    pd.testing.assert_frame_equal(first, again)


def test_other_interval_or_seed_gives_other_events() -> None:
    base = SimulatedSource(seed=7, events_per_interval=50).events(INTERVAL)
    later = Interval(INTERVAL.end, INTERVAL.end + timedelta(minutes=10))
    assert set(base["event_id"]).isdisjoint(SimulatedSource(7, 50).events(later)["event_id"])
    assert not base["f1"].equals(SimulatedSource(8, 50).events(INTERVAL)["f1"])


def test_shape_ids_and_timestamps() -> None:
    events = SimulatedSource(seed=1, events_per_interval=200).events(INTERVAL)
    assert tuple(events.columns) == EVENT.names
    assert len(events) == 200
    assert events["event_id"].is_unique
    assert events["event_id"].iloc[0] == "evt-20261125T181000-0000000"
    assert (events["ts_utc"] >= INTERVAL.start).all()
    assert (events["ts_utc"] < INTERVAL.end).all()
    assert str(events["ts_utc"].dt.tz) == "UTC"


def test_distributions_and_missing_share() -> None:
    events = SimulatedSource(seed=3, events_per_interval=40_000).events(INTERVAL)
    assert events["f1"].mean() == pytest.approx(10, abs=0.1)
    assert events["f1"].std() == pytest.approx(2, abs=0.1)
    assert events["f3"].mean() == pytest.approx(100, abs=0.5)
    assert events["f2"].isna().mean() == pytest.approx(0.05, abs=0.01)
    assert events["f1"].notna().all()
    assert events["f3"].notna().all()


def test_empty_batch_has_the_columns() -> None:
    events = SimulatedSource(seed=1, events_per_interval=0).events(INTERVAL)
    assert tuple(events.columns) == EVENT.names
    assert events.empty


def test_a_negative_event_count_is_refused() -> None:
    with pytest.raises(ValueError, match="events_per_interval"):
        SimulatedSource(seed=1, events_per_interval=-1)
