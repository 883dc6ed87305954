"""Test data of the monitoring tests: an interval of simulated events stored as the pipeline stores
them (processed_data, baseline_v1's predictions), labels, and a local webhook that records posts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.models.scoring import LinearModel
from etlml.monitoring.baseline_profile import BASELINE_COEF, BASELINE_INTERCEPT, BASELINE_STATS

START = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
INTERVAL = Interval(START, START + timedelta(minutes=10))


def simulated(
    interval: Interval, n: int, seed: int = 7, shift: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """The simulator's events of ``interval``, features shifted by ``shift``, with baseline_v1's
    score (``y_hat``) and a ground truth ``y_true`` close to it."""
    events = SimulatedSource(seed, n).events(interval)
    for feature, delta in (shift or {}).items():
        events[feature] = events[feature] + delta
    model = LinearModel("baseline_v1", BASELINE_COEF, BASELINE_INTERCEPT, BASELINE_STATS)
    events["y_hat"] = model.predict(events, use_stored_z=False)
    noise = np.random.default_rng(seed).normal(0.0, 0.3, n)
    events["y_true"] = events["y_hat"] + 0.05 * (events["f1"].fillna(10.0) - 10.0) ** 2 + noise
    return events


def store(
    conn: psycopg.Connection[Any],
    interval: Interval,
    events: pd.DataFrame,
    *,
    version: str = "baseline_v1",
    labeled: np.ndarray | None = None,
) -> None:
    """Store ``events`` in processed_data with ``version``'s predictions, and labels for the rows
    ``labeled`` marks (all when None); committed."""
    rows = [
        (e, ts.to_pydatetime(), _num(f1), _num(f2), _num(f3), interval.start, interval.end)
        for e, ts, f1, f2, f3 in zip(
            events["event_id"], events["ts_utc"], events["f1"], events["f2"], events["f3"], strict=True
        )
    ]
    with conn.cursor() as cur:
        cur.execute("SELECT etlml_ensure_partitions(%s, %s)", (interval.start, interval.start))
        with cur.copy(
            "COPY processed_data (event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed, "
            "f3_imputed, normalized_with, interval_start, interval_end) FROM STDIN"
        ) as copy:
            for e, ts, f1, f2, f3, s, end in rows:
                copy.write_row((e, ts, f1, f2, f3, 0, 0, 0, False, f2 is None, False, "baseline_v1", s, end))
        add_predictions(cur, interval, events, version)
        mask = np.ones(len(events), bool) if labeled is None else labeled
        add_labels(cur, interval, events[mask])
    conn.commit()


def add_predictions(cur: psycopg.Cursor[Any], interval: Interval, events: pd.DataFrame, version: str) -> None:
    with cur.copy(
        "COPY predictions (interval_start, event_id, model_version, y_hat, ts_utc, written_by_run) FROM STDIN"
    ) as copy:
        for e, y, ts in zip(events["event_id"], events["y_hat"], events["ts_utc"], strict=True):
            copy.write_row((interval.start, e, version, float(y), ts.to_pydatetime(), "test/run"))


def add_labels(cur: psycopg.Cursor[Any], interval: Interval, events: pd.DataFrame) -> None:
    with cur.copy(
        "COPY labels (event_id, y_true, observed_at, interval_start, interval_end, source_file, "
        "written_by_run) FROM STDIN"
    ) as copy:
        for e, y in zip(events["event_id"], events["y_true"], strict=True):
            copy.write_row((e, float(y), interval.end, interval.start, interval.end, "test", "test/run"))


def _num(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def clear(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "TRUNCATE processed_data, predictions, rejected_events, run_audit, labels, model_performance, "
        "feature_drift, monitor_due"
    )
    # an estimator another test fitted (the session's warehouse is shared) would add its own alerts
    conn.execute("DELETE FROM error_estimators")
    conn.commit()


@dataclass
class Webhook:
    """A local HTTP server recording every POST (path, headers, JSON body); answers ``status``."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.posts.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body.decode())}
            )
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
