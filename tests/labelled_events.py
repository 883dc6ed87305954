"""Stored events with ground truth for the train/compare/promote tests.

Intervals of simulated events are loaded into ``processed_data`` the way ``load_processed`` loads them,
and each event gets a label in ``labels``: the baseline's linear score plus a non-linear term in f1
and a small deterministic noise, so a gradient-boosted model can beat ``baseline_v1`` and a linear one
cannot quite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from etlml.features import transform
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.models import registry
from etlml.steps.rescore import rescore
from etlml.warehouse import writes

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=10)
# y_true: baseline_v1's score (0.3 f1_z + 0.2 f2_z + 0.5 f3_z, missing f2 imputed to z = 0), a
# non-linear term in f1 and noise of at most +-0.05 derived from the event id.
LABEL = (
    "0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z + 0.6 * (d.f1_z * d.f1_z - 1)"
    " + (abs(hashtext(d.event_id)) %% 1001 - 500) / 10000.0"
)


def interval(k: int) -> Interval:
    return Interval(START + k * STEP, START + (k + 1) * STEP)


def load_intervals(conn: psycopg.Connection[Any], first: int, last: int, events: int = 150) -> None:
    """Load intervals ``first`` .. ``last - 1`` of simulated events (seed 7), normalized with baseline_v1's
    statistics, and label every one of their events."""
    stats = registry.read_spec(conn, "baseline_v1").stats
    for k in range(first, last):
        frame = transform.normalize(transform.clean(SimulatedSource(7, events).events(interval(k))), stats)
        writes.upsert_processed(conn, frame, interval(k), "baseline_v1")
    label(conn, interval(first).start, interval(last - 1).end)


def label(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> None:
    conn.execute(
        f"INSERT INTO labels (event_id, y_true, observed_at, interval_start, interval_end, source_file, "
        f"written_by_run) SELECT d.event_id, {LABEL}, d.interval_end + interval '30 minutes', "
        "d.interval_start, d.interval_end, 'simulator', 'test/labels' FROM processed_data d "
        "WHERE d.interval_start >= %s AND d.interval_start < %s",
        (start, end),
    )


def score(version: str, first: int, last: int) -> None:
    """Store ``version``'s predictions of intervals ``first`` .. ``last - 1`` (what shadowing stores)."""
    rescore("test/score", version, interval(first).start, interval(last - 1).end, 10_000)
