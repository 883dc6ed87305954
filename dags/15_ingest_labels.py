"""DAG 15_ingest_labels: every 10 minutes, store the ground truth (labels) that arrived in the run's
data interval.

wait_for_events -> ingest_labels. Labels come from the source ``ETLML_LABEL_SOURCE`` names:

* ``simulator`` (the default when ``ETLML_SOURCE`` is the simulator): the run of interval J gives the
  labels of the events the simulator made for interval J - ``ETLML_SIMULATOR_LABEL_DELAY`` (3 by
  default), made again from the seed (and ``ETLML_SIMULATOR_SHIFT``), observed inside J.
  ``wait_for_events`` waits (rescheduled, up to 6 hours) until ``10_etl_ml_pipeline`` has loaded
  that interval; ``simulated_events`` must be the pipeline's (200 by default) for the labels to be
  those of the stored events.
* ``landing``: the files of ``<ETLML_LANDING_ROOT>/labels/YYYY-MM-DD/HHMM/`` (``.csv``, ``.jsonl``,
  ``.parquet``, gzip too; fields ``event_id``, ``y_true``, ``observed_at``), read like event files.

``ingest_labels`` checks every record against the labels' contract and, in one transaction, upserts
the labels whose event is stored (looked up within ``ETLML_LABEL_WINDOW_DAYS`` before the interval)
into ``labels`` (the latest delivery wins), quarantines the others in ``rejected_labels`` with a
reason (``unknown_event`` for a label without its event), and records the run in ``run_audit``. A
rerun of an interval leaves the tables as they were.

``ingest_labels`` emits an event of the Asset ``labels`` whose extra names the intervals of the events
whose labels it stored or withdrew (``intervals``); ``30_monitor``, scheduled on ``predictions |
labels``, computes those intervals at once, so realized accuracy and label coverage follow the labels.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from etlml.settings import start_date
from etlml.steps.assets import LABELS_URI

DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}
LABELS = Asset(name="labels", uri=LABELS_URI, group="etlml")


def _run() -> Any:
    from etlml.steps.run import RunContext

    return RunContext.from_airflow(get_current_context())


def _simulated_events() -> int:
    return int(get_current_context()["params"]["simulated_events"])


@dag(
    dag_id="15_ingest_labels",
    schedule=CronDataIntervalTimetable("*/10 * * * *", timezone="UTC"),
    start_date=start_date(),
    catchup=True,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=7),
    default_args=DEFAULT_ARGS,
    params={
        "simulated_events": Param(
            200,
            type="integer",
            minimum=1,
            description="events the simulator made per interval: the pipeline's simulated_events "
            "(ETLML_LABEL_SOURCE=simulator only)",
        ),
        "accept_smaller_source": Param(
            False,
            type="boolean",
            description="a rerun never stores less than its label files held when the interval was "
            "stored (fewer records, files gone): it fails without retry, naming what is missing. Set "
            "true, by hand, to take labels back on purpose (a corrected file); run_audit records who did",
        ),
    },
    tags=["etlml", "labels"],
    doc_md=__doc__,
)
def ingest_labels_dag() -> None:
    @task.sensor(task_id="wait_for_events", poke_interval=60, timeout=6 * 3600, mode="reschedule")
    def wait_for_events() -> bool:
        from etlml.steps.ingest_labels import events_loaded

        return bool(events_loaded(_run(), simulated_events=_simulated_events()))

    @task(outlets=[LABELS])
    def ingest_labels() -> dict[str, Any]:
        from etlml.steps.assets import labels_extra
        from etlml.steps.ingest_labels import ingest_labels

        run = _run()
        ingested = ingest_labels(run, simulated_events=_simulated_events())
        get_current_context()["outlet_events"][LABELS].extra = labels_extra(run, ingested.intervals)
        return ingested.to_xcom()

    wait_for_events() >> ingest_labels()


ingest_labels_dag()
