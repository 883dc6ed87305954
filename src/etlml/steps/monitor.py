"""Task ``monitor`` of DAG ``30_monitor``: realized accuracy and drift of the intervals that need it.

A run triggered by ``predictions`` or ``labels`` asset events computes the intervals their ``extra``
names (a ``labels`` event: the intervals of the events whose labels it stored or withdrew); a
time-scheduled (or manual) run sweeps the intervals whose labels changed (stored, changed or removed)
since they were computed, wherever they start. Each interval is replaced in a transaction of its own
(:func:`etlml.monitoring.metrics.compute_interval`); a drift alert calls the notifier. An interval
PostgreSQL cannot compute is recorded as such and does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from etlml import settings
from etlml.interval import Interval
from etlml.monitoring import metrics
from etlml.monitoring.alerts import AlertNotifier
from etlml.steps.run import fail_fast
from etlml.warehouse import connection

log = logging.getLogger(__name__)


def extras_of(triggering_asset_events: Mapping[Any, Iterable[Any]] | None) -> list[dict[str, Any]]:
    """The ``extra`` of every asset event that triggered the run (the task context's
    ``triggering_asset_events``: asset -> its events); none for a time-scheduled or manual run."""
    return [
        dict(getattr(event, "extra", None) or {})
        for events in (triggering_asset_events or {}).values()
        for event in events
    ]


def intervals_of(extras: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """The distinct intervals named by asset events' ``extra``, oldest first: a ``predictions`` event
    names its own (``interval_start``/``interval_end``, ISO-8601), a ``labels`` event a list of them
    (``intervals``, possibly empty). An event without them (one created by hand in the UI, say) is
    skipped with a warning: it names nothing to compute."""
    found: set[Interval] = set()
    for extra in extras:
        for bounds in _bounds(extra):
            try:
                found.add(
                    Interval(
                        datetime.fromisoformat(str(bounds["interval_start"])),
                        datetime.fromisoformat(str(bounds["interval_end"])),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("asset event without a usable interval skipped (%r): %s", exc, dict(extra))
    return sorted(found, key=lambda i: i.start)


def _bounds(extra: Mapping[str, Any]) -> list[Any]:
    """The interval bounds one event's extra names: the items of its ``intervals`` list, or itself."""
    listed = extra.get("intervals")
    return list(listed) if isinstance(listed, list) else [extra]


def intervals_named(triggering_asset_events: Mapping[Any, Iterable[Any]] | None) -> list[Interval]:
    """The intervals the asset events that triggered the run name (:func:`extras_of`, then
    :func:`intervals_of`); none for a time-scheduled or manual run."""
    return intervals_of(extras_of(triggering_asset_events))


def notify(report: metrics.IntervalReport) -> None:
    """The interval's new alerts through :class:`AlertNotifier`: a drift alert for new ``alert``
    statuses, an estimated-performance alert (kind ``estimated_performance``, marked as estimated)
    for versions whose estimated MAE crossed their threshold."""
    interval = f"{report.interval.start:%Y-%m-%d %H:%M}-{report.interval.end:%H:%M} UTC"
    if report.new_alerts:
        what = ", ".join(
            f"{d.model_version} {d.feature} PSI " + ("n/a (no values)" if d.psi is None else f"{d.psi:.3f}")
            for d in report.new_alerts
        )
        AlertNotifier(kind="drift", summary=f"drift alert in {interval}: {what}").send(report.to_xcom())
    if report.new_estimate_alerts:
        what = ", ".join(
            f"{e.model_version} estimated MAE {e.mae:.4g} (band {e.low:.4g}-{e.high:.4g}) above its "
            f"threshold {e.threshold:.4g} ({e.threshold / e.reference_mae:g} x validation MAE "
            f"{e.reference_mae:.4g})"
            for e in report.new_estimate_alerts
        )
        summary = f"estimated (before labels) performance alert in {interval}: {what}"
        AlertNotifier(kind="estimated_performance", summary=summary).send(report.to_xcom())


@dataclass(frozen=True)
class Monitored:
    """What a ``monitor`` run computed: why (``named by asset events`` or ``labels changed``), the
    intervals (keys, oldest first), how many new drift alerts were raised, and the intervals whose
    figures could not be computed (recorded in ``monitor_due``)."""

    reason: str
    intervals: tuple[str, ...]
    alerts: int
    not_computed: tuple[str, ...] = ()

    def to_xcom(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "intervals": list(self.intervals),
            "not_computed": list(self.not_computed),
            "alerts": self.alerts,
        }


@fail_fast
def monitor(named: Sequence[Interval]) -> Monitored:
    """Compute the intervals asset events named (:func:`intervals_named`), or, when there are none,
    those whose labels changed. A setting or an alerts connection that cannot work fails the task
    without retries."""
    cfg, thresholds = settings.load(), settings.monitoring()
    with connection.connect(cfg.warehouse_conn_id) as conn:
        if named:
            todo, why = list(named), "named by asset events"
        else:
            todo, why = metrics.changed_intervals(conn), "labels changed"
        log.info("%d interval(s) to compute (%s)", len(todo), why)
        reports = [r for r in (_compute(conn, i, thresholds) for i in todo) if r is not None]
    for report in reports:
        log.info("%s: %s", report.interval.key, report.to_xcom())
    computed = {r.interval.key for r in reports}
    return Monitored(
        why,
        tuple(i.key for i in todo if i.key in computed),
        sum(len(r.new_alerts) for r in reports),
        tuple(i.key for i in todo if i.key not in computed),
    )


def _compute(conn: Any, interval: Interval, thresholds: settings.Monitoring) -> metrics.IntervalReport | None:
    """Compute one interval; one whose figures PostgreSQL cannot compute (a value out of range, say)
    is recorded as such and skipped, so that it cannot stop the others."""
    seen = metrics.queued_change(conn, interval)
    try:
        return metrics.compute_interval(conn, interval, thresholds, notify)
    except psycopg.errors.DataError as exc:
        problem = f"cannot be computed: {type(exc).__name__}: {str(exc).strip()}"
        log.error("%s %s; recorded in monitor_due, retried when its labels change", interval.key, problem)
        metrics.record_problem(conn, interval, problem, seen)
        return None
