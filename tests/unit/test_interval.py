"""Interval: the key every run's files and rows are partitioned by."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from etlml.interval import Interval

START = datetime(2026, 11, 25, 18, 10, tzinfo=UTC)


def test_key_names_both_bounds_in_utc() -> None:
    cet = timezone(timedelta(hours=1))
    interval = Interval(START.astimezone(cet), (START + timedelta(minutes=10)).astimezone(cet))
    assert interval.key == "20261125T181000Z_20261125T182000Z"
    assert interval.start.tzinfo == UTC


def test_empty_interval_says_which_timetable_to_use() -> None:
    with pytest.raises(ValueError, match="CronDataIntervalTimetable"):
        Interval(START, START)


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(START.replace(tzinfo=None), START.replace(tzinfo=None) + timedelta(minutes=1))
