"""DAG 30_monitor: realized and estimated accuracy, and input drift, per interval and model version.

Scheduled on the ``predictions`` or ``labels`` asset, or every 10 minutes, whichever comes first (an
asset-or-time schedule on ``predictions | labels``). A run triggered by asset events computes the
intervals their extra names: a ``predictions`` event (``store_predictions`` of ``10_etl_ml_pipeline``)
names its interval, a ``labels`` event (``ingest_labels`` of ``15_ingest_labels``) the intervals of the
events whose labels it stored or withdrew, so coverage and realized accuracy follow the labels at once.
A time-scheduled or manual run, or one whose events name no interval (a label run that stored nothing),
sweeps the intervals whose labels changed since they were computed, wherever they start (labels arrive
intervals, or days, after their events; a label run that failed its gate stored labels but emitted no
event). For each interval and version, ``model_performance`` (n, MAE, RMSE, bias) and ``feature_drift``
(PSI of f1, f2, f3 and the score against the version's reference profile, status by
``ETLML_PSI_WARN``/``ETLML_PSI_ALERT``) are computed in the warehouse and replace the interval's rows in
one transaction; a version with an error estimator also gets its estimated MAE and band, before any
label exists. A new ``alert`` status, or an estimated MAE newly above
``ETLML_ESTIMATED_MAE_ALERT_RATIO`` times the version's validation MAE, calls the alert notifier (a log
warning; a post to connection ``etlml_alerts`` if it exists). An interval that cannot be computed is
recorded as such and does not stop the others.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task

from etlml.settings import start_date
from etlml.steps.assets import LABELS_URI, PREDICTIONS_URI

PREDICTIONS = Asset(name="predictions", uri=PREDICTIONS_URI, group="etlml")
LABELS = Asset(name="labels", uri=LABELS_URI, group="etlml")


@dag(
    dag_id="30_monitor",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/10 * * * *", timezone="UTC"), assets=PREDICTIONS | LABELS
    ),
    start_date=start_date(),
    # the sweep looks at the whole label window on every run: missed runs need no catch-up
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={"retries": 3, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True},
    tags=["etlml", "monitoring"],
    doc_md=__doc__,
)
def monitor_dag() -> None:
    @task
    def monitor() -> dict[str, Any]:
        """The intervals the triggering asset events name; without any, the label sweep."""
        from etlml.steps.monitor import intervals_named, monitor

        context = get_current_context()
        named = intervals_named(context.get("triggering_asset_events"))
        return monitor(named).to_xcom()

    monitor()


monitor_dag()
