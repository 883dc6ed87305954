"""What the warehouse says about a DAG's runs: the intervals in a window that never ran successfully."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from etlml.interval import Interval, every
from etlml.warehouse.connection import query


def gaps(conn: psycopg.Connection[Any], dag_id: str, start: datetime, end: datetime) -> list[Interval]:
    """The 10-minute intervals wholly in ``[start, end)`` without a ``run_audit`` row whose gate
    passed, oldest first: the intervals to backfill."""
    with conn.cursor() as cur:
        cur.execute(query("passed_intervals"), {"dag_id": dag_id, "from": start, "to": end})
        passed = {Interval(s, e) for s, e in cur.fetchall()}
    return [interval for interval in every(start, end) if interval not in passed]
