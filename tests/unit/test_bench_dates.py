"""The benchmark's dates come from the clock, with the start date set together: it runs on any day."""

import functools
import importlib.util
import itertools
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

from hypothesis import given
from hypothesis import strategies as st

from scripts.localstack import current_interval_start

BENCH = Path(__file__).resolve().parents[2] / "bench"
TEN_MINUTES = timedelta(minutes=10)
NOWS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@functools.cache
def bench_module(name: str) -> ModuleType:
    """``bench/<name>.py`` (a script, not a package), imported once."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


@given(now=NOWS, runs=st.integers(1, 5))
def test_airflow_runs_are_closed_intervals_from_the_start_date_on(now: datetime, runs: int) -> None:
    """Every run triggered under the scheduler gets an interval at or after ETLML_START_DATE (else the
    run has no task instances), already closed at ``now``, one after the other."""
    start_date, logical_dates = bench_module("airflow_overhead").run_dates(now, runs)
    assert len(logical_dates) == runs
    assert logical_dates[0] - TEN_MINUTES == start_date
    assert [b - a for a, b in itertools.pairwise(logical_dates)] == [TEN_MINUTES] * (runs - 1)
    assert logical_dates[-1] == current_interval_start(now) <= now
    assert start_date.minute % 10 == start_date.second == start_date.microsecond == 0


@given(now=NOWS)
def test_in_process_intervals_are_closed_at_any_moment(now: datetime) -> None:
    """The intervals bench.py runs (offsets -2 to +1 of its first, and the growth run's next one) have
    closed, with the stream's grace to spare, whenever the benchmark starts."""
    bench = bench_module("bench")
    first = bench.interval_start(now)
    assert first.minute % 10 == first.second == first.microsecond == 0
    assert first - 2 * TEN_MINUTES >= now - timedelta(hours=2)
    assert first + 2 * TEN_MINUTES <= now - timedelta(minutes=30)
