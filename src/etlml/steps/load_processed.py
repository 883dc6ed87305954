"""Task ``load_processed``: every shard's processed events, the run's quarantine and its accounting,
committed in one transaction; then the quality gate."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import psycopg

from etlml import quality, settings
from etlml.quality import Audit
from etlml.settings import Settings
from etlml.steps.run import Loaded, ProcessedShard, RunContext, RunPlan, fail_fast
from etlml.storage import read_frames
from etlml.warehouse import connection, writes

log = logging.getLogger(__name__)


@fail_fast
def load_processed(run: RunContext, plan: RunPlan, shards: Sequence[ProcessedShard]) -> Loaded:
    """Make the interval's rows in ``processed_data`` equal every shard's processed events (a first
    run COPYs them in; a rerun merges), replace the interval's quarantine in ``rejected_events`` and
    store the run's accounting in ``run_audit`` once ``extracted = loaded + rejected + deduplicated``
    holds: one transaction. Then the quality gate fails the task, without retries, if the run
    rejected more than ``ETLML_MAX_REJECTED_SHARE`` of its records: the rows stay committed, but the
    run scores none of its events.
    """
    cfg = settings.load()
    ordered = sorted(shards, key=lambda s: s.key.index)
    mixed = {s.normalized_with for s in ordered} - {plan.normalized_with}
    if mixed:
        raise quality.InvariantError(
            f"shards normalized with {sorted(mixed)}, the run's plan says {plan.normalized_with!r}"
        )

    def events() -> Iterable[pd.DataFrame]:
        return (frame for s in ordered for frame in read_frames(s.processed))

    with connection.connect(cfg.warehouse_conn_id) as conn, conn.transaction():
        merged = writes.upsert_processed(conn, events, run.interval, plan.normalized_with)
        # after the upsert the interval holds exactly the staged rows (MergeResult.staged)
        audit = _quarantine_and_audit(conn, run, plan, cfg, merged.staged)
    log.info("processed_data for %s (%d shard(s)): %s", run.interval.key, len(ordered), merged.to_xcom())
    quality.enforce(audit, run.interval)
    return Loaded(merged, audit)


def _quarantine_and_audit(
    conn: psycopg.Connection[Any], run: RunContext, plan: RunPlan, cfg: Settings, loaded_rows: int
) -> Audit:
    """Make the interval's ``rejected_events`` equal what extract rejected, then check and store where
    every record went (``run_audit``); raises :class:`quality.InvariantError` if they do not add up."""
    rejected = functools.partial(read_frames, plan.rejected)
    merged = writes.upsert_rejected(conn, rejected, run.interval, run.ref)
    log.info("rejected_events for %s: %s", run.interval.key, merged.to_xcom())
    stored = writes.interval_outcomes(conn, run.interval, loaded_rows)
    audit = Audit.of(plan.source, plan.counts, stored, cfg.max_rejected_share)
    quality.check_balanced(audit, run.interval)
    writes.store_audit(conn, run.dag_id, run.interval, run.ref, audit, first_entry_id=plan.first_entry_id)
    return audit
