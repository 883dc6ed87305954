"""Task ``load_processed``: every shard's processed events, the run's quarantine and its accounting,
committed in one transaction; then the quality gate."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from etlml import quality, records, settings
from etlml.errors import PermanentError
from etlml.ingest import contract
from etlml.ingest.ledger import FileEntry, Ledger
from etlml.interval import Interval
from etlml.quality import Audit
from etlml.settings import Settings
from etlml.steps.run import (
    Loaded,
    LoadRef,
    ProcessedShard,
    RunContext,
    RunPlan,
    accept_smaller_source,
    fail_fast,
    ledger_shrinkage,
    record_smaller_source_refusal,
    smaller_source_error,
)
from etlml.storage import FileRef, FrameWriter, read_frames
from etlml.warehouse import connection, writes
from etlml.warehouse.writes import MergeResult, StoredInterval

log = logging.getLogger(__name__)


class SourceMismatchError(PermanentError, RuntimeError):
    """The interval holds rows another source stored; a run of this source would replace them."""


@fail_fast
def load_processed(run: RunContext, plan: RunPlan, shards: Sequence[ProcessedShard]) -> Loaded:
    """Make the interval's rows in ``processed_data`` equal every shard's processed events (a first
    run COPYs them in; a rerun merges), replace the interval's quarantine in ``rejected_events`` and
    store the run's accounting in ``run_audit`` once ``extracted = loaded + rejected + deduplicated``
    holds: one transaction, under a new ``load_id``. Then the quality gate fails the task, without
    retries, if the run rejected more than ``ETLML_MAX_REJECTED_SHARE`` of its records: the rows stay
    committed, but the run scores none of its events.

    Nothing stored is removed by absence: when the source did not have the interval (a missing
    landing partition), whatever the interval holds is kept as it is; and a run never replaces rows
    another source stored (it fails without retry). An event id another interval holds stays there
    (the first stored delivery wins); this run's record of it is quarantined as ``redelivered``.
    """
    cfg = settings.load()
    ordered = sorted(shards, key=lambda s: s.key.index)
    _check_normalization(plan, ordered)
    _ensure_partitions(cfg, run.interval)
    now_read = _read_ledger(plan)
    with connection.connect(cfg.warehouse_conn_id) as conn:
        with conn.transaction():
            # one load of an interval at a time: a second run of it (a manual run beside the scheduled
            # one, a backfill) waits here, then merges against what the first committed
            writes.lock_intervals(conn, [run.interval], shared=False)
            held = writes.stored_interval(conn, run.dag_id, run.interval)
            if held is not None and not plan.found:
                # whatever it holds, even no row: a missing partition is no smaller source either
                return _keep(run, plan, cfg, held)
            if held is not None and held.holds_rows:
                _check_same_source(run, plan, held)
            shrunk = ledger_shrinkage(None if held is None else held.ledger, now_read)
            if shrunk and not run.accept_smaller_source:
                record_smaller_source_refusal(conn, run, shrunk)  # committed with nothing else
            else:
                accepted = accept_smaller_source(run, shrunk) if shrunk else None
                loaded = _load(conn, run, plan, cfg, ordered, ledger=now_read, accepted=accepted)
        if shrunk and not run.accept_smaller_source:
            raise smaller_source_error(run, shrunk)
    quality.enforce(loaded.audit, run.interval)
    return loaded


def _load(
    conn: psycopg.Connection[Any],
    run: RunContext,
    plan: RunPlan,
    cfg: Settings,
    ordered: Sequence[ProcessedShard],
    *,
    ledger: Ledger | None,
    accepted: dict[str, Any] | None,
) -> Loaded:
    """Merge the shards' events, quarantine and audit the run, under a new ``load_id`` (in the
    caller's transaction, under the interval's lock)."""

    def events() -> Iterable[pd.DataFrame]:
        return (frame for s in ordered for frame in read_frames(s.processed))

    load_id = str(uuid.uuid4())
    merged = writes.upsert_processed(
        conn, events, run.interval, plan.normalized_with, window=cfg.dedup_window
    )
    refused = _refused(run, cfg, ordered, merged.redelivered) if len(merged.redelivered) else None
    audit = _quarantine_and_audit(
        conn,
        run,
        plan,
        cfg,
        merged.loaded_rows,
        refused=refused,
        load_id=load_id,
        ledger=ledger,
        accepted=accepted,
    )
    log.info(
        "processed_data for %s (%d shard(s)): %s; %d predictions of changed events deleted; %d redelivered",
        run.interval.key,
        len(ordered),
        merged.result.to_xcom(),
        merged.outdated_predictions,
        len(merged.redelivered),
    )
    return Loaded(merged.result, audit, LoadRef(load_id, refused))


def _read_ledger(plan: RunPlan) -> Ledger | None:
    """What the run read of its source: the plan's ledger and the files' entries (``None`` for the
    simulator, and for plans of older releases)."""
    if plan.ledger is None:
        return None
    read = Ledger.from_json(plan.ledger)
    if plan.files is None:
        return read
    files = {
        str(name): FileEntry.from_json(json.loads(entry) if isinstance(entry, str) else int(size))
        for frame in read_frames(plan.files)
        for name, size, entry in zip(frame["source_file"], frame["size"], frame["entry"], strict=True)
    }
    return replace(read, files=files)


def _check_normalization(plan: RunPlan, shards: Sequence[ProcessedShard]) -> None:
    mixed = {s.normalized_with for s in shards} - {plan.normalized_with}
    if mixed:
        raise quality.InvariantError(
            f"shards normalized with {sorted(mixed)}, the run's plan says {plan.normalized_with!r}"
        )


def _ensure_partitions(cfg: Settings, interval: Interval) -> None:
    """The interval's day partitions, in a short transaction of their own before the load's
    (``90_housekeeping`` makes the coming days' ahead of time; a catch-up of past days makes theirs here)."""
    with connection.connect(cfg.warehouse_conn_id) as conn:
        writes.ensure_partitions(conn, interval.start, interval.start)


def _keep(run: RunContext, plan: RunPlan, cfg: Settings, held: StoredInterval) -> Loaded:
    log.warning(
        "%s: the source has no partition for this interval; kept the %d processed events and %d "
        "quarantined records it holds, loaded by %s from %s. A moved or archived folder removes "
        "nothing: to empty the interval, deliver an empty partition folder and rerun it",
        run.interval.key,
        held.processed,
        held.rejected,
        held.written_by_run,
        held.source,
    )
    audit = Audit(plan.source, plan.counts, cfg.max_rejected_share)
    return Loaded(MergeResult(0, 0, 0), audit, LoadRef(None), kept=(held.processed, held.rejected))


def _check_same_source(run: RunContext, plan: RunPlan, held: StoredInterval) -> None:
    if held.source != plan.source:
        raise SourceMismatchError(
            f"{run.interval.key} holds {held.processed} events and {held.rejected} quarantined records "
            f"that source {held.source!r} stored (run {held.written_by_run}); this run reads "
            f"{plan.source!r} and would replace them. Rerun the interval with ETLML_SOURCE={held.source}, "
            "or delete its rows from processed_data, predictions and rejected_events first if the "
            f"{plan.source!r} delivery is to replace them"
        )


def _refused(
    run: RunContext, cfg: Settings, shards: Sequence[ProcessedShard], redelivered: pd.DataFrame
) -> FileRef:
    """The quarantine records of the events ``upsert_processed`` refused because another interval
    holds their id, with their provenance and raw bytes from the shards' events files."""
    held = redelivered.set_index("event_id")
    path = run.folder(cfg) / "redelivered.parquet"
    with FrameWriter(path, records.REJECTED) as out:
        for shard in shards:
            if shard.events is None:
                raise quality.InvariantError(
                    "the run's transform payloads do not name their events files (an older release); "
                    "clear the run from extract"
                )
            for frame in read_frames(shard.events):
                found = frame[frame["event_id"].isin(held.index)].reset_index(drop=True)
                if len(found):
                    out.write(_quarantined(found, held, run.interval))
    assert out.ref is not None
    if out.ref.rows != len(redelivered):
        raise quality.InvariantError(
            f"{len(redelivered)} events were refused as redelivered, {out.ref.rows} found in the shards"
        )
    return out.ref


def _quarantined(found: pd.DataFrame, held: pd.DataFrame, interval: Interval) -> pd.DataFrame:
    holders = held.loc[found["event_id"]]
    messages = [
        f"event id already stored under interval {Interval(start, end).key}; the first stored "
        f"delivery wins, so this later one (interval {interval.key}) is kept here and not loaded"
        for start, end in zip(holders["held_start"], holders["held_end"], strict=True)
    ]
    return pd.DataFrame(
        {
            "source_file": found["source_file"],
            "row_number": found["row_number"],
            "event_id": found["event_id"],
            "reason": records.REDELIVERED,
            "message": messages,
            "raw": contract.raw_bytes(found, np.arange(len(found))),
        }
    ).astype(records.REJECTED.dtypes())


def _quarantine_and_audit(
    conn: psycopg.Connection[Any],
    run: RunContext,
    plan: RunPlan,
    cfg: Settings,
    loaded_rows: int,
    *,
    refused: FileRef | None,
    load_id: str,
    ledger: Ledger | None = None,
    accepted: dict[str, Any] | None = None,
) -> Audit:
    """Make the interval's ``rejected_events`` equal what extract rejected and the load refused, then
    check and store where every record went (``run_audit``); raises :class:`quality.InvariantError`
    if they do not add up."""

    def rejected() -> Iterable[pd.DataFrame]:
        yield from read_frames(plan.rejected)
        if refused is not None:
            yield from read_frames(refused)

    merged = writes.upsert_rejected(conn, rejected, run.interval, run.ref)
    log.info("rejected_events for %s: %s", run.interval.key, merged.to_xcom())
    stored = writes.interval_outcomes(conn, run.interval, loaded_rows)
    audit = Audit.of(plan.source, plan.counts, stored, cfg.max_rejected_share)
    quality.check_balanced(audit, run.interval)
    # the files' sizes are the ledger's, already read from files.parquet (a plan of an older release
    # has no ledger: its listing then)
    if ledger is not None and ledger.files is not None:
        files = ledger.sizes
    else:
        files = None if plan.files is None else _listing(plan.files)
    writes.store_audit(
        conn,
        run.dag_id,
        run.interval,
        run.ref,
        audit,
        load_id=load_id,
        first_entry_id=plan.first_entry_id,
        files=files,
        ledger=ledger,
        accepted=accepted,
        dag_version_id=run.dag_version_id,
        model_versions=[version for _, version in plan.serving.roles],
    )
    return audit


def _listing(ref: FileRef) -> dict[str, int]:
    """The landing files the run read (``files.parquet``) as ``run_audit.files`` records them."""
    return {
        str(name): int(size)
        for frame in read_frames(ref)
        for name, size in zip(frame["source_file"], frame["size"], strict=True)
    }
