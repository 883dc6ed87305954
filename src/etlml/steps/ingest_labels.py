"""Tasks of ``15_ingest_labels``: wait until the simulator's labelled events are loaded, then read the
run's labels, check them against the labels' contract and store them, with their quarantine and
accounting, in one transaction."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from etlml import records, settings
from etlml.errors import PermanentError
from etlml.ingest import label_contract, source
from etlml.ingest.ledger import Ledger, with_records
from etlml.ingest.simulator import SimulatedLabels
from etlml.interval import Interval
from etlml.quality import Audit, check_balanced
from etlml.settings import Settings
from etlml.steps.run import (
    RunContext,
    accept_smaller_source,
    fail_fast,
    ledger_shrinkage,
    record_smaller_source_refusal,
    smaller_source_error,
)
from etlml.warehouse import connection, labels, writes

log = logging.getLogger(__name__)

PIPELINE = "10_etl_ml_pipeline"


class LabelGateError(PermanentError, RuntimeError):
    """A label run rejected a larger share of its records than allowed; its labels are stored."""


@dataclass(frozen=True)
class LabelsIngested:
    """What a label run did (XCom: counts, and the keys of ``intervals``: those of the events whose
    labels it stored or withdrew, which its ``labels`` asset event names for ``30_monitor``)."""

    source: str
    found: bool
    extracted: int = 0
    loaded: int = 0
    rejected: int = 0
    deduplicated: int = 0
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    gate: str = "passed"
    intervals: tuple[Interval, ...] = ()

    def to_xcom(self) -> dict[str, Any]:
        return {**asdict(self), "intervals": [interval.key for interval in self.intervals]}


def _label_source(cfg: Settings, simulated_events: int) -> source.EventSource:
    return source.labels_from_settings(cfg, simulated_events)


def _simulated_interval(cfg: Settings, run: RunContext, simulated_events: int) -> Interval | None:
    """The interval whose events the simulator labels in this run, or ``None`` for landing labels."""
    found = _label_source(cfg, simulated_events)
    return found.labelled(run.interval) if isinstance(found, SimulatedLabels) else None


def _before_start(interval: Interval) -> bool:
    return interval.start < settings.start_date()


@fail_fast
def events_loaded(run: RunContext, *, simulated_events: int) -> bool:
    """Whether the labels of this run can find their events: for the simulator's labels, whether
    ``10_etl_ml_pipeline`` has loaded the interval they label (or that interval lies before
    ``ETLML_START_DATE``, where the pipeline makes no events and the simulator gives no labels);
    landing labels may name events of any interval, so they never wait."""
    cfg = settings.load()
    labelled = _simulated_interval(cfg, run, simulated_events)
    if labelled is None or _before_start(labelled):
        return True
    with connection.connect(cfg.warehouse_conn_id) as conn:
        loaded = labels.interval_loaded(conn, PIPELINE, labelled)
    if not loaded:
        log.info("waiting for %s to load %s, whose labels this run gives", PIPELINE, labelled.key)
    return loaded


def _records(
    cfg: Settings, run: RunContext, simulated_events: int
) -> tuple[source.EventSource, source.Reading]:
    found = _label_source(cfg, simulated_events)
    if isinstance(found, SimulatedLabels) and _before_start(found.labelled(run.interval)):
        log.info(
            "%s labels %s, before ETLML_START_DATE: the simulator made no events there, so gives no labels",
            run.interval.key,
            found.labelled(run.interval).key,
        )
        return found, source.Reading(0, [], streamed=False)
    return found, source.read(found, run.interval)


@fail_fast
def ingest_labels(run: RunContext, *, simulated_events: int, now: datetime | None = None) -> LabelsIngested:
    """Read the run's labels (``ETLML_LABEL_SOURCE``), check them (:mod:`etlml.ingest.label_contract`)
    and, in one transaction: upsert the accepted labels whose event is stored into ``labels`` (the
    latest delivery wins), remove those the interval delivered before and no longer does, make the
    interval's ``rejected_labels`` equal to the rejected records plus the labels of unknown events,
    and record the run in ``run_audit`` once ``extracted = loaded + rejected + deduplicated`` holds.
    Then the quality gate: more than ``ETLML_MAX_REJECTED_SHARE`` rejected fails the task without
    retries (what was stored stays). A missing partition stores nothing, keeps what is held."""
    cfg = settings.load()
    found, reading = _records(cfg, run, simulated_events)
    if not reading.found:
        log.warning(
            "%s: no label partition; nothing stored, what the interval holds is kept", run.interval.key
        )
        return LabelsIngested(found.name, found=False)
    chunks = list(reading.chunks)
    frame = pd.concat(chunks, ignore_index=True) if chunks else records.LABEL_RECORD.empty()
    checked = label_contract.apply(frame, _rules(cfg, run, now))
    window_start = run.interval.shifted(-cfg.label_window).start
    read = _read(reading, frame, checked.counts.extracted)
    counts, audit, stored = _checked_store(
        cfg, run, checked, source_name=found.name, window_start=window_start, read=read
    )
    log.info("labels of %s: %s", run.interval.key, stored.to_xcom())
    _enforce(audit, run.interval)
    return LabelsIngested(
        found.name,
        found=True,
        extracted=counts.extracted,
        loaded=counts.accepted,
        rejected=counts.rejected,
        deduplicated=counts.deduplicated,
        inserted=stored.inserted,
        updated=stored.updated,
        removed=stored.removed,
        gate=audit.gate,
        intervals=stored.intervals,
    )


def _checked_store(
    cfg: Settings,
    run: RunContext,
    checked: Any,
    *,
    source_name: str,
    window_start: datetime,
    read: Ledger | None,
) -> tuple[Any, Audit, Any]:
    """Under the interval's label lock: refuse a smaller source (the ledger's rule) unless the run
    accepts it, else store the labels and the run's audit."""
    with connection.connect(cfg.warehouse_conn_id) as conn:
        with conn.transaction():
            labels.lock(conn, run.interval)
            shrunk = ledger_shrinkage(writes.stored_ledger(conn, run.dag_id, run.interval), read)
            if shrunk and not run.accept_smaller_source:
                record_smaller_source_refusal(conn, run, shrunk)  # committed with nothing else
            else:
                accepted = accept_smaller_source(run, shrunk) if shrunk else None
                counts, audit, stored = _store(
                    conn,
                    cfg,
                    run,
                    checked,
                    source_name=source_name,
                    window_start=window_start,
                    read=read,
                    accepted=accepted,
                )
        if shrunk and not run.accept_smaller_source:
            raise smaller_source_error(run, shrunk)
    return counts, audit, stored


def _read(reading: source.Reading, frame: pd.DataFrame, records_read: int) -> Ledger | None:
    """What the run read of its label files, for the ledger (``None``: the simulator's labels)."""
    if reading.files is None:
        return None
    per_file = {str(k): int(n) for k, n in frame["source_file"].value_counts().items()}
    return Ledger(records_read, files=with_records(reading.files, per_file))


def _store(
    conn: Any,
    cfg: Settings,
    run: RunContext,
    checked: Any,
    *,
    source_name: str,
    window_start: datetime,
    read: Ledger | None,
    accepted: dict[str, Any] | None,
) -> tuple[Any, Audit, Any]:
    """Store the checked labels, their quarantine and the run's audit (what it read of its source,
    ``read``; an operator's acceptance of a smaller source, ``accepted``), in the caller's transaction."""
    stored = labels.store(
        conn,
        checked.valid,
        checked.rejected,
        run.interval,
        run.ref,
        window_start=window_start,
        unknown_message=_unknown_message(cfg, run.interval, window_start),
    )
    counts = label_contract.with_unknown(checked.counts, stored.unknown)
    audit = Audit.of(
        source_name, counts, (stored.matched, stored.rejected, stored.deduplicated), cfg.max_rejected_share
    )
    check_balanced(audit, run.interval)
    writes.store_audit(
        conn,
        run.dag_id,
        run.interval,
        run.ref,
        audit,
        load_id=None,
        files=None if read is None else read.sizes,
        ledger=read,
        accepted=accepted,
        dag_version_id=run.dag_version_id,
    )
    return counts, audit, stored


def _rules(cfg: Settings, run: RunContext, now: datetime | None) -> label_contract.Rules:
    return label_contract.Rules(
        run.interval.end, now or datetime.now(UTC), cfg.max_future_skew, cfg.max_abs_value
    )


def _unknown_message(cfg: Settings, interval: Interval, window_start: datetime) -> str:
    days = cfg.label_window.total_seconds() / 86_400
    return (
        f"no event with this id is stored in an interval starting in [{window_start.isoformat()}, "
        f"{interval.end.isoformat()}) (ETLML_LABEL_WINDOW_DAYS={days:g}); if the event is loaded "
        "later, clear this label run"
    )


def _enforce(audit: Audit, interval: Interval) -> None:
    counts = audit.counts
    summary = (
        f"{counts.rejected} of {counts.extracted} label records of {interval.key} rejected "
        f"({counts.rejected_share:.1%}); top reasons: {audit.top_reasons()}"
    )
    if not audit.passed:
        raise LabelGateError(
            f"label quality gate failed: {summary}, more than ETLML_MAX_REJECTED_SHARE="
            f"{audit.max_rejected_share:g}. The accepted labels are stored; the others are in "
            f"rejected_labels (interval_start = '{interval.start.isoformat()}'): fix or remove the bad "
            "files (or load the missing events), then clear the run"
        )
    if counts.rejected or counts.deduplicated:
        log.warning("labels stored with rejections: %s; see rejected_labels", summary)
