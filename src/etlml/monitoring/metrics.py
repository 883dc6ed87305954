"""Realized accuracy and drift of one interval, computed in the warehouse and stored idempotently.

For an interval, every model version with predictions in it gets a ``model_performance`` row
(predictions, labelled ones, MAE, RMSE, bias = mean(y_hat - y_true)) and, if it has a reference
profile, four ``feature_drift`` rows (f1, f2, f3, score: PSI, missing share, status). The rows are
computed by ``sql/monitor_interval.sql`` on the interval's rows in the database (nothing is pulled
into Python) and replace the interval's previous ones in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from etlml.features.profile import SHARE_FLOOR
from etlml.interval import Interval
from etlml.monitoring.estimates import EstimatedError, estimate_interval
from etlml.settings import Monitoring
from etlml.warehouse.connection import query

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drift:
    """One ``feature_drift`` row: a version's feature on the interval against its reference."""

    model_version: str
    feature: str
    n: int
    psi: float | None
    missing_share: float
    status: str

    def to_xcom(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "feature": self.feature,
            "n": self.n,
            "psi": self.psi,
            "missing_share": self.missing_share,
            "status": self.status,
        }


MAX_MEASURED = 1e100
"""Predictions and labels beyond this magnitude give no error: squared, they could overflow float8.
The contracts keep inputs and labels far below it (``ETLML_MAX_ABS_VALUE``)."""


@dataclass(frozen=True)
class Performance:
    """One ``model_performance`` row (the error figures are None while nothing is labelled, or when
    ``problem`` says why they cannot be computed)."""

    model_version: str
    n_predictions: int
    n_labeled: int
    mae: float | None
    rmse: float | None
    bias: float | None
    problem: str | None = None


@dataclass(frozen=True)
class IntervalReport:
    """What one computation of an interval stored, and which alerts it raised anew (drift, and
    estimated MAEs above their threshold)."""

    interval: Interval
    performance: tuple[Performance, ...]
    drift: tuple[Drift, ...]
    new_alerts: tuple[Drift, ...]
    estimates: tuple[EstimatedError, ...] = ()
    new_estimate_alerts: tuple[EstimatedError, ...] = ()

    @property
    def without_profile(self) -> tuple[str, ...]:
        """Versions with predictions but no reference profile: no drift rows."""
        profiled = {d.model_version for d in self.drift}
        return tuple(p.model_version for p in self.performance if p.model_version not in profiled)

    def to_xcom(self) -> dict[str, Any]:
        return {
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "versions": {
                p.model_version: {"n_predictions": p.n_predictions, "n_labeled": p.n_labeled, "mae": p.mae}
                for p in self.performance
            },
            "drift": {f"{d.model_version}/{d.feature}": d.status for d in self.drift},
            "new_alerts": [d.to_xcom() for d in self.new_alerts],
            "estimated": [e.to_xcom() for e in self.estimates],
            "new_estimate_alerts": [e.to_xcom() for e in self.new_estimate_alerts],
            "without_profile": list(self.without_profile),
        }


Notify = Callable[[IntervalReport], None]


def compute_interval(
    conn: psycopg.Connection[Any],
    interval: Interval,
    thresholds: Monitoring,
    notify: Notify | None = None,
) -> IntervalReport:
    """Replace the interval's ``model_performance`` and ``feature_drift`` rows, in one transaction
    (call it on a connection with no transaction open, so that each interval commits on its own).

    ``notify`` is called, before the transaction commits, when a (version, feature) has status
    ``alert`` that did not have it before, or a version's estimated MAE is above its threshold where
    it was not before: if notifying fails, nothing is stored, and a retry computes and notifies
    again (alerts are sent at least once, and a recompute with the same outcome sends none).
    """
    params = {"start": interval.start, "end": interval.end}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("monitor_lock_interval"), {"key": interval.key})
        cur.execute(query("monitor_session"))
        queued = cur.execute(query("monitor_due_read"), params).fetchone()
        before = {(str(v), str(f)) for v, f in cur.execute(query("monitor_alerts"), params).fetchall()}
        estimated_before = {str(v) for (v,) in cur.execute(query("monitor_estimate_alerts"), params)}
        drift = _replace_rows(cur, params, thresholds)
        performance = tuple(_performance(row) for row in cur.execute(query("monitor_performance"), params))
        counts = {p.model_version: p.n_predictions for p in performance}
        estimates = estimate_interval(cur, interval, counts, thresholds.estimated_mae_alert_ratio)
        fresh = tuple(d for d in drift if d.status == "alert" and (d.model_version, d.feature) not in before)
        fresh_estimates = tuple(e for e in estimates if e.alert and e.model_version not in estimated_before)
        report = IntervalReport(interval, performance, drift, fresh, estimates, fresh_estimates)
        for version in report.without_profile:
            log.info(
                "%s: no drift for %s: the version has no reference profile (register it with one)",
                interval.key,
                version,
            )
        if (fresh or fresh_estimates) and notify is not None:
            notify(report)
        if queued is not None:
            cur.execute(query("monitor_due_done"), {**params, "change_seq": queued[0]})
    return report


def _replace_rows(
    cur: psycopg.Cursor[Any], params: dict[str, Any], thresholds: Monitoring
) -> tuple[Drift, ...]:
    """Replace the interval's ``model_performance`` and ``feature_drift`` rows; the drift rows."""
    cur.execute(query("monitor_clear_interval"), params)
    cur.execute(
        query("monitor_interval"),
        {
            **params,
            "share_floor": SHARE_FLOOR,
            "psi_warn": thresholds.psi_warn,
            "psi_alert": thresholds.psi_alert,
            "max_measured": MAX_MEASURED,
            "max_measured_text": f"{MAX_MEASURED:g}",
        },
    )
    return tuple(sorted((_drift(row) for row in cur.fetchall()), key=lambda d: (d.model_version, d.feature)))


def queued_change(conn: psycopg.Connection[Any], interval: Interval) -> int | None:
    """The queued change of the interval's labels (``monitor_due.change_seq``), if any."""
    with conn.transaction():
        row = conn.execute(query("monitor_due_read"), {"start": interval.start}).fetchone()
    return None if row is None else int(row[0])


def record_problem(
    conn: psycopg.Connection[Any], interval: Interval, problem: str, change_seq: int | None
) -> None:
    """Record that the interval's figures could not be computed (at the labels' change ``change_seq``
    read before trying): the sweep skips it until its labels change again."""
    params = {"start": interval.start, "end": interval.end, "problem": problem, "change_seq": change_seq}
    with conn.transaction():
        conn.execute(query("monitor_due_failed"), params)


def changed_intervals(conn: psycopg.Connection[Any]) -> list[Interval]:
    """Intervals whose labels changed (a label stored, changed or removed) since their monitoring
    rows were computed, wherever they start; oldest first. Read in a transaction of its own
    (committed before any interval is computed)."""
    with conn.transaction():
        rows = conn.execute(query("monitor_changed_intervals")).fetchall()
    return [Interval(start, end) for start, end in rows]


def _drift(row: Sequence[Any]) -> Drift:
    version, feature, n, psi, missing_share, status = row
    return Drift(
        str(version),
        str(feature),
        int(n),
        None if psi is None else float(psi),
        float(missing_share),
        str(status),
    )


def _performance(row: Sequence[Any]) -> Performance:
    version, n_predictions, n_labeled, mae, rmse, bias, problem = row
    mae, rmse, bias = (None if v is None else float(v) for v in (mae, rmse, bias))
    text = None if problem is None else str(problem)
    return Performance(str(version), int(n_predictions), int(n_labeled), mae, rmse, bias, text)
