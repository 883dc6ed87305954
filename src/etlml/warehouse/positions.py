"""Where in a source's log a run's interval began, as the warehouse recorded it (``run_audit``)."""

from __future__ import annotations

from typing import Any

import psycopg

from etlml.interval import Interval
from etlml.warehouse.connection import query


def recorded_first_entry(
    conn: psycopg.Connection[Any], dag_id: str, interval: Interval
) -> tuple[bool, str | None]:
    """``(ran, first_entry_id)``: whether a run of ``dag_id`` recorded this interval, and the stream
    position of its first entry (``None``: the interval had none, or another source)."""
    params = {"dag_id": dag_id, "interval_start": interval.start, "interval_end": interval.end}
    with conn.cursor() as cur:
        cur.execute(query("recorded_first_entry"), params)
        row = cur.fetchone()
    return (False, None) if row is None else (True, None if row[0] is None else str(row[0]))
