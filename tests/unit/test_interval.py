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


def test_every_gives_the_ten_minute_intervals_wholly_inside_a_window() -> None:
    from etlml.interval import every

    start = datetime(2026, 11, 22, 9, 5, tzinfo=UTC)
    got = every(start, start + timedelta(minutes=40))
    assert [(i.start.minute, i.end.minute) for i in got] == [(10, 20), (20, 30), (30, 40)]
    # bounds in another zone are the same instants
    plus_one = timezone(timedelta(hours=1))
    assert every(start.astimezone(plus_one), (start + timedelta(minutes=40)).astimezone(plus_one)) == got
    assert every(start, start + timedelta(minutes=4)) == []
    assert every(start + timedelta(hours=1), start) == []


def test_shifted_moves_both_bounds_and_keeps_utc_for_pendulum_bounds() -> None:
    import pendulum

    start = pendulum.datetime(2026, 11, 25, 18, 0, tz="UTC")
    interval = Interval(start, start.add(minutes=10))
    back = interval.shifted(-timedelta(minutes=30))
    assert back == Interval(
        datetime(2026, 11, 25, 17, 30, tzinfo=UTC), datetime(2026, 11, 25, 17, 40, tzinfo=UTC)
    )
    assert back.start.utcoffset() == timedelta(0)
    assert back.start.isoformat() == "2026-11-25T17:30:00+00:00"
