"""Mistakes in how a run was started fail its task at once (AirflowFailException), never retried."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from etlml.steps.rescore import rescore
from etlml.steps.run import RunContext

AWARE = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (AWARE.replace(tzinfo=None), AWARE.replace(tzinfo=None) + timedelta(hours=1)),
        (AWARE.replace(tzinfo=None), AWARE + timedelta(hours=1)),  # mixed: a TypeError before
        (AWARE, AWARE.replace(tzinfo=None) + timedelta(hours=1)),
    ],
)
def test_rescore_refuses_a_window_without_utc_offset(start: datetime, end: datetime) -> None:
    """Naive bounds were compared in the server's time zone, or raised a TypeError that was retried."""
    with pytest.raises(AirflowFailException, match=r"^20_rescore params 'from' and 'to' need a UTC offset"):
        rescore("20_rescore/manual", "baseline_v1", start, end, 10)


@pytest.mark.parametrize(
    ("start", "end"),
    [(None, AWARE), (AWARE, None), (None, None), (AWARE, AWARE)],
)
def test_a_run_without_a_data_interval_fails_without_retry(
    start: datetime | None, end: datetime | None
) -> None:
    context = {
        "dag": SimpleNamespace(dag_id="10_etl_ml_pipeline"),
        "run_id": "manual__x",
        "data_interval_start": start,
        "data_interval_end": end,
    }
    with pytest.raises(AirflowFailException, match="data interval"):
        RunContext.from_airflow(context)


def test_a_run_with_a_data_interval_gets_its_context() -> None:
    context = {
        "dag": SimpleNamespace(dag_id="10_etl_ml_pipeline"),
        "run_id": "scheduled__x",
        "data_interval_start": AWARE,
        "data_interval_end": AWARE + timedelta(minutes=10),
    }
    run = RunContext.from_airflow(context)
    assert (run.ref, run.interval.start, run.interval.end) == (
        "10_etl_ml_pipeline/scheduled__x",
        AWARE,
        AWARE + timedelta(minutes=10),
    )
