"""Interval: the key every run's files and rows are partitioned by."""

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from etlml.interval import Interval

START = datetime(2026, 11, 25, 18, 10, tzinfo=UTC)


def test_key_names_both_bounds_in_utc() -> None:
    cet = timezone(timedelta(hours=1))
    interval = Interval(START.astimezone(cet), (START + timedelta(minutes=10)).astimezone(cet))
    assert interval.key == "20261125T181000Z_20261125T182000Z"
    assert interval.start.tzinfo == UTC


def test_the_documented_key_is_the_key() -> None:
    """The docstring's example is what ``key`` gives for 18:10-18:20 on 25 November 2026."""
    documented = re.search(r"``(\d{8}T\d+Z_\d{8}T\d+Z)``", Interval.key.__doc__ or "")
    assert documented is not None
    assert documented[1] == Interval(START, START + timedelta(minutes=10)).key


def test_empty_interval_says_which_timetable_to_use() -> None:
    with pytest.raises(ValueError, match="CronDataIntervalTimetable"):
        Interval(START, START)


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(START.replace(tzinfo=None), START.replace(tzinfo=None) + timedelta(minutes=1))
