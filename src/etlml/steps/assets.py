"""What the asset events carry: the Airflow Assets ``processed_data`` and ``predictions`` (emitted by
``load_processed`` and ``store_predictions`` of ``10_etl_ml_pipeline``) with the interval, its rows and
the model versions in their ``extra``, and ``labels`` (emitted by ``ingest_labels`` of
``15_ingest_labels``) with the intervals of the events whose labels the run stored or withdrew.
``30_monitor`` is scheduled on ``predictions | labels`` and computes the intervals the events name
(:func:`etlml.steps.monitor.intervals_of`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the DAG file imports the URIs at parse time: nothing heavy here
    from etlml.interval import Interval
    from etlml.steps.run import Loaded, RunContext, RunPlan, StoredShard

# The warehouse's tables, named through its Airflow connection (``warehouse``): the database behind
# it differs per deployment, so the URIs use a scheme of their own instead of a host and port.
PROCESSED_DATA_URI = "x-etlml://warehouse/public/processed_data"
PREDICTIONS_URI = "x-etlml://warehouse/public/predictions"
LABELS_URI = "x-etlml://warehouse/public/labels"


def _interval(interval: Interval) -> dict[str, Any]:
    return {"interval_start": interval.start.isoformat(), "interval_end": interval.end.isoformat()}


def processed_extra(run: RunContext, plan: RunPlan, loaded: Loaded) -> dict[str, Any]:
    """``processed_data``'s event: the interval, the events it holds after the load (``rows``), what
    the load changed, and the versions the run scores with."""
    return {
        **_interval(run.interval),
        "rows": loaded.audit.counts.accepted if loaded.kept is None else loaded.kept[0],
        "inserted": loaded.merge.inserted,
        "updated": loaded.merge.updated,
        "rejected": loaded.audit.counts.rejected,
        "model_versions": [version for _, version in plan.serving.roles],
        "run": run.ref,
    }


def predictions_extra(run: RunContext, stored: StoredShard) -> dict[str, Any]:
    """``predictions``' event of one shard: the interval, the shard's predictions per version."""
    return {
        **_interval(run.interval),
        "rows": sum(scored.predictions.rows for scored, _ in stored.stored),
        "model_versions": [scored.model_version for scored, _ in stored.stored],
        "by_version": {scored.model_version: scored.predictions.rows for scored, _ in stored.stored},
        **stored.key.to_xcom(),
        "run": run.ref,
    }


def labels_extra(run: RunContext, intervals: Sequence[Interval]) -> dict[str, Any]:
    """``labels``' event of a label run: its own interval (``delivered_in``) and the intervals of the
    events whose labels it stored or withdrew (``intervals``, oldest first: what ``30_monitor``
    computes; empty when it stored none)."""
    return {
        "delivered_in": _interval(run.interval),
        "intervals": [_interval(interval) for interval in intervals],
        "run": run.ref,
    }
