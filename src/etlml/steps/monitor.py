"""Task ``monitor`` of DAG ``30_monitor``: realized accuracy and drift of the intervals that need it.

A run triggered by ``predictions`` asset events computes the intervals their ``extra`` names; a
time-scheduled (or manual) run sweeps the intervals of the last ``ETLML_LABEL_WINDOW_DAYS`` whose
labels changed since they were computed. Each interval is replaced in a transaction of its own
(:func:`etlml.monitoring.metrics.compute_interval`); a drift alert calls the notifier.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    """The distinct intervals named by asset events' ``extra`` (``interval_start``/``interval_end``,
    ISO-8601), oldest first. An event without them (one created by hand in the UI, say) is skipped
    with a warning: it names nothing to compute."""
    found: set[Interval] = set()
    for extra in extras:
        try:
            found.add(
                Interval(
                    datetime.fromisoformat(str(extra["interval_start"])),
                    datetime.fromisoformat(str(extra["interval_end"])),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("asset event without a usable interval skipped (%r): %s", exc, dict(extra))
    return sorted(found, key=lambda i: i.start)


def intervals_named(triggering_asset_events: Mapping[Any, Iterable[Any]] | None) -> list[Interval]:
    """The intervals the asset events that triggered the run name (:func:`extras_of`, then
    :func:`intervals_of`); none for a time-scheduled or manual run."""
    return intervals_of(extras_of(triggering_asset_events))


def notify_drift(report: metrics.IntervalReport) -> None:
    """The drift alert of an interval's new ``alert`` statuses, through :class:`AlertNotifier`."""
    what = ", ".join(
        f"{d.model_version} {d.feature} PSI " + ("n/a (no values)" if d.psi is None else f"{d.psi:.3f}")
        for d in report.new_alerts
    )
    interval = f"{report.interval.start:%Y-%m-%d %H:%M}-{report.interval.end:%H:%M} UTC"
    AlertNotifier(kind="drift", summary=f"drift alert in {interval}: {what}").send(report.to_xcom())


@dataclass(frozen=True)
class Monitored:
    """What a ``monitor`` run computed: why (``named by asset events`` or ``labels changed``), the
    intervals (keys, oldest first) and how many new drift alerts were raised."""

    reason: str
    intervals: tuple[str, ...]
    alerts: int

    def to_xcom(self) -> dict[str, Any]:
        return {"reason": self.reason, "intervals": list(self.intervals), "alerts": self.alerts}


@fail_fast
def monitor(named: Sequence[Interval], as_of: datetime | None = None) -> Monitored:
    """Compute the intervals asset events named (:func:`intervals_of`), or, when there are none,
    sweep the label window ending at ``as_of`` (default: now). A setting or an alerts connection
    that cannot work fails the task without retries."""
    cfg, thresholds = settings.load(), settings.monitoring()
    with connection.connect(cfg.warehouse_conn_id) as conn:
        if named:
            todo, why = list(named), "named by asset events"
        else:
            until = as_of or datetime.now(UTC)
            todo = metrics.changed_intervals(conn, until - thresholds.label_window, until)
            why = "labels changed"
        log.info("%d interval(s) to compute (%s)", len(todo), why)
        reports = [metrics.compute_interval(conn, i, thresholds, notify_drift) for i in todo]
    for report in reports:
        log.info("%s: %s", report.interval.key, report.to_xcom())
    return Monitored(why, tuple(r.interval.key for r in reports), sum(len(r.new_alerts) for r in reports))
