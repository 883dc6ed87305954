"""Task ``extract``: plan the run, read the interval's records, and split them by the data contract
into shard files of events and one file of rejected records."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from etlml import FEATURES, records, settings
from etlml.errors import PermanentError, SettingsError
from etlml.features.stats import Stats
from etlml.features.transform import batch_stats
from etlml.ingest import contract
from etlml.ingest import source as sources
from etlml.ingest.shards import shard_count, shard_of
from etlml.ingest.simulator import SimulatedSource
from etlml.steps.init_schema import preflight
from etlml.steps.run import (
    DEFAULT_SHARD_SIZE,
    DEFAULT_SIMULATED_EVENTS,
    NORMALIZATIONS,
    Extracted,
    Normalization,
    RunContext,
    RunPlan,
    Shard,
    ShardKey,
    fail_fast,
)
from etlml.storage import FileRef, FrameWriter, at, read_frames, read_table
from etlml.warehouse import connection, positions

log = logging.getLogger(__name__)

EVENTS = records.EVENT + records.PROVENANCE + records.RAW
"""The shard files: events with their provenance and raw bytes (resolving duplicates needs them, and
a record ``load_processed`` refuses as redelivered is quarantined with them; ``transform`` reads the
event columns only)."""
Tally = list[tuple[contract.Counts, Counter[str]]]


class IncompleteRangeError(PermanentError, RuntimeError):
    """A rerun would read a shorter range of the source's log than the interval's first run did."""


@dataclass(frozen=True)
class _Split:
    shards: tuple[Shard, ...]
    rejected: FileRef
    counts: contract.Counts


@fail_fast
def extract(
    run: RunContext,
    *,
    simulated_events: int = DEFAULT_SIMULATED_EVENTS,
    shard_size: int = DEFAULT_SHARD_SIZE,
    normalization: Normalization = "model",
    source: sources.EventSource | None = None,
) -> Extracted:
    """Check the warehouse and resolve the model versions the run scores with (once, here), read
    the interval's records from the source (``ETLML_SOURCE``) chunk by chunk, and split them by the
    data contract into events and rejected records.

    Events go to ``ceil(records / shard_size)`` shard files by a hash of their id; the DAG maps
    ``transform``, ``predict`` and ``store_predictions`` over them. The statistics ``transform``
    normalizes with are fixed here: the champion's, or in ``batch`` normalization those of all the
    run's events, over every shard, so sharding does not change them.
    """
    if normalization not in NORMALIZATIONS:
        raise SettingsError(
            f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}"
        )
    cfg = settings.load()
    served, champion = preflight(cfg.warehouse_conn_id)
    source = source or sources.from_settings(cfg, simulated_events)
    if not isinstance(source, SimulatedSource):
        log.info("the DAG param simulated_events applies to the simulator only; %s ignores it", source.name)
    rules = contract.Rules(
        run.interval,
        now=datetime.now(UTC),
        max_future_skew=cfg.max_future_skew,
        tolerance=getattr(source, "ts_tolerance", timedelta(0)),
        max_abs_value=cfg.max_abs_value,
    )
    reading = sources.read(source, run.interval)
    first_entry_id = _same_range(cfg, run, source)
    split = _split(run.folder(cfg), reading, rules, shard_size)
    stats = champion.stats if normalization == "model" else _batch_stats(split.shards)
    plan = RunPlan(
        source.name,
        split.counts,
        split.rejected,
        served,
        normalization,
        dict(stats),
        found=reading.found,
        first_entry_id=first_entry_id,
        files=_files(run.folder(cfg), reading.files),
    )
    _log_summary(run, plan, len(split.shards))
    return Extracted(plan, split.shards)


def _files(folder: Any, files: dict[str, int] | None) -> FileRef | None:
    """``files.parquet``: the landing files the run read, for ``run_audit.files``."""
    if files is None:
        return None
    with FrameWriter(folder / "files.parquet", records.FILES) as out:
        out.write(
            pd.DataFrame({"source_file": list(files), "size": list(files.values())}).astype(
                records.FILES.dtypes()
            )
        )
    return _written(out)


def _same_range(cfg: settings.Settings, run: RunContext, source: sources.EventSource) -> str | None:
    """A log source's first entry id of the interval, after checking that a previous run of the
    interval, if any, began at the same entry: otherwise the range was trimmed (or the log replaced)
    and a rerun would load a partial interval over a complete one."""
    if not isinstance(source, sources.PositionedSource):
        return None
    first = source.first_entry_id(run.interval)
    with connection.connect(cfg.warehouse_conn_id) as conn:
        ran, recorded = positions.recorded_first_entry(conn, run.dag_id, run.interval)
    if ran and recorded is not None and recorded != first:
        raise IncompleteRangeError(
            f"the interval {run.interval.key} is no longer complete in {source.name}: its first run read "
            f"from entry {recorded}, the stream now begins it at {first or 'no entry at all'} (trimmed by "
            "retention, or the stream was replaced). It is not reloaded; the rows stored for it stay"
        )
    return first


def _split(folder: Any, reading: sources.Reading, rules: contract.Rules, shard_size: int) -> _Split:
    """Events to their shard files, rejected records to ``rejected.parquet``; then, if the records
    came in chunks, duplicates resolved within each shard (every record of an id is in one)."""
    count = shard_count(reading.total, shard_size)
    keys = [ShardKey(k, count) for k in range(count)]
    tally: Tally = []
    with FrameWriter(folder / "rejected.parquet", records.REJECTED) as rejected:
        refs = _write_shards(folder, keys, reading, rules, rejected, tally=tally)
        if reading.streamed:
            refs = [_resolve_duplicates(ref, rejected, tally) for ref in refs]
    assert rejected.ref is not None
    shards = tuple(Shard(key, ref) for key, ref in zip(keys, refs, strict=True))
    return _Split(shards, rejected.ref, contract.total(tally))


def _write_shards(
    folder: Any,
    keys: list[ShardKey],
    reading: sources.Reading,
    rules: contract.Rules,
    rejected: FrameWriter,
    *,
    tally: Tally,
) -> list[FileRef]:
    with ExitStack() as stack:
        writers = [stack.enter_context(FrameWriter(folder / k.file_name("events"), EVENTS)) for k in keys]
        for chunk in reading.chunks:
            # streamed chunks are deduplicated later, in their shard, where every record of an id meets
            checked = contract.apply(chunk, rules, provenance=True, deduplicate=not reading.streamed)
            rejected.write(checked.rejected)
            shard = shard_of(checked.valid["event_id"], len(keys)) if len(keys) > 1 else None
            for k, writer in enumerate(writers):
                writer.write(checked.valid if shard is None else checked.valid[shard == k])
            tally.append((checked.counts, checked.extra))
    return [_written(writer) for writer in writers]


def _written(writer: FrameWriter) -> FileRef:
    assert writer.ref is not None, "a FrameWriter has a ref once it closed without an error"
    return writer.ref


def _resolve_duplicates(ref: FileRef, rejected: FrameWriter, tally: Tally) -> FileRef:
    """Quarantine the events of a shard that a later delivery of their id supersedes (every record
    of an id is in one shard), and rewrite the shard without them. Memory holds the shard's ids,
    files and row numbers, and one row group: the shard is read and rewritten row group by row group."""
    if not contract.has_duplicates(read_table(ref, columns=["event_id"])["event_id"]):
        return ref
    keys = read_table(ref, columns=["event_id", "source_file", "row_number"])
    found = contract.superseded(keys["event_id"], keys["source_file"], keys["row_number"])
    del keys
    path = at(ref.path)
    resolving = at(f"{ref.path}.resolving")
    with FrameWriter(resolving, EVENTS) as out:
        first = 0
        for frame in read_frames(ref):
            part = _part(found, first, first + len(frame))
            lost = np.zeros(len(frame), dtype=bool)
            lost[part.rows] = True
            losers = frame[lost].reset_index(drop=True)
            rejected.write(contract.duplicates_rejected(losers, part))
            tally.append((contract.recount_superseded(losers), Counter()))
            out.write(frame[~lost].reset_index(drop=True))
            first += len(frame)
    resolving.rename(path)
    resolved = _written(out)
    return FileRef(path=str(path), rows=resolved.rows, sha256=resolved.sha256)


def _part(found: contract.Superseded, first: int, end: int) -> contract.Superseded:
    """The superseded records at positions ``[first, end)``, numbered from ``first``."""
    low, high = np.searchsorted(found.rows, [first, end])
    return contract.Superseded(
        found.rows[low:high] - first, found.kept_file[low:high], found.kept_row[low:high]
    )


def _batch_stats(shards: tuple[Shard, ...]) -> Stats:
    def features() -> Iterable[pd.DataFrame]:
        return (frame for s in shards for frame in read_frames(s.events, columns=list(FEATURES)))

    return batch_stats(features)


def _log_summary(run: RunContext, plan: RunPlan, shards: int) -> None:
    counts = plan.counts
    log.info(
        "extracted %d records for %s from %s: %d events in %d shard(s), %d rejected %s, %d duplicates; "
        "champion %s, challenger %s, normalized with %s statistics",
        counts.extracted,
        run.interval.key,
        plan.source,
        counts.accepted,
        shards,
        counts.rejected,
        counts.by_reason,
        counts.deduplicated,
        plan.serving.champion,
        plan.serving.challenger or "none",
        plan.normalized_with,
    )
    if counts.extra_fields:
        log.warning(
            "ignored %d unknown fields; the most frequent (records): %s",
            counts.extra_field_names,
            counts.extra_fields,
        )
