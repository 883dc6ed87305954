"""Task ``extract``: plan the run, read the interval's records, and split them by the data contract
into shard files of events and one file of rejected records."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from etlml import FEATURES, records, settings
from etlml.errors import SettingsError
from etlml.features.stats import Stats
from etlml.features.transform import batch_stats
from etlml.ingest import contract, ledger
from etlml.ingest import source as sources
from etlml.ingest.ledger import FileEntry
from etlml.ingest.shards import shard_count, shard_of
from etlml.ingest.simulator import SimulatedSource
from etlml.ingest.stream_entries import entry_id
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
from etlml.storage import FileRef, FrameWriter, at, read_frames, read_table, read_tables

log = logging.getLogger(__name__)

EVENTS = records.EVENT + records.PROVENANCE + records.RAW
"""The shard files: events with their provenance and raw bytes (resolving duplicates needs them, and
a record ``load_processed`` refuses as redelivered is quarantined with them; ``transform`` reads the
event columns only)."""
Tally = list[tuple[contract.Counts, Counter[str]]]


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
    rules = _rules(cfg, run, source)
    reading, entries, per_file = _observed(source, sources.read(source, run.interval))
    split = _split(run.folder(cfg), reading, rules, shard_size)
    stats = champion.stats if normalization == "model" else _batch_stats(split.shards)
    stream = entries.range(str(getattr(source, "key", source.name)))
    plan = RunPlan(
        source.name,
        split.counts,
        split.rejected,
        served,
        normalization,
        dict(stats),
        found=reading.found,
        first_entry_id=stream.first_entry_id if isinstance(source, sources.PositionedSource) else None,
        files=_files(
            run.folder(cfg), None if reading.files is None else ledger.with_records(reading.files, per_file)
        ),
        ledger=_ledger(source, split.counts, stream),
    )
    _log_summary(run, plan, len(split.shards))
    return Extracted(plan, split.shards)


def _rules(cfg: settings.Settings, run: RunContext, source: sources.EventSource) -> contract.Rules:
    return contract.Rules(
        run.interval,
        now=datetime.now(UTC),
        max_future_skew=cfg.max_future_skew,
        tolerance=getattr(source, "ts_tolerance", timedelta(0)),
        max_abs_value=cfg.max_abs_value,
    )


def _observed(
    source: sources.EventSource, reading: sources.Reading
) -> tuple[sources.Reading, _EntryRange, Counter[str]]:
    """``reading`` with its chunks observed as they pass, for the ledger: a log's first and last
    entry and their count, and the records of each file."""
    entries = _EntryRange()
    if isinstance(source, sources.PositionedSource):
        reading = replace(reading, chunks=entries.observe(reading.chunks))
    per_file: Counter[str] = Counter()
    if reading.files is not None:
        reading = replace(reading, chunks=_count_per_file(reading.chunks, per_file))
    return reading, entries, per_file


def _files(folder: Any, files: dict[str, FileEntry] | None) -> FileRef | None:
    """``files.parquet``: the landing files the run read and their ledger entries, for ``run_audit``."""
    if files is None:
        return None
    with FrameWriter(folder / "files.parquet", records.FILES) as out:
        out.write(
            pd.DataFrame(
                {
                    "source_file": list(files),
                    "size": [entry.size for entry in files.values()],
                    "entry": [json.dumps(entry.to_json()) for entry in files.values()],
                }
            ).astype(records.FILES.dtypes())
        )
    return _written(out)


def _count_per_file(chunks: Iterable[pd.DataFrame], counts: Counter[str]) -> Iterator[pd.DataFrame]:
    """The chunks as they pass, counting each file's records into ``counts`` (the ledger's per-file
    records: a file that later holds fewer is a smaller source, whatever the other files hold)."""
    for chunk in chunks:
        counts.update({str(name): int(n) for name, n in chunk["source_file"].value_counts().items()})
        yield chunk


class _EntryRange:
    """The first and last entry, and how many, of the chunks of a log source as they pass."""

    def __init__(self) -> None:
        self.low: int | None = None
        self.high: int | None = None
        self.entries = 0

    def observe(self, chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            if len(chunk):
                numbers = chunk["row_number"].to_numpy()
                low, high = int(numbers.min()), int(numbers.max())
                self.low = low if self.low is None else min(self.low, low)
                self.high = high if self.high is None else max(self.high, high)
                self.entries += len(chunk)
            yield chunk

    def range(self, key: str) -> ledger.StreamRange:
        first = None if self.low is None else entry_id(self.low)
        last = None if self.high is None else entry_id(self.high)
        return ledger.StreamRange(key, first, last, self.entries)


def _ledger(
    source: sources.EventSource, counts: contract.Counts, stream: ledger.StreamRange
) -> dict[str, Any] | None:
    """What the plan carries of the run's ledger (the files' entries travel in ``files.parquet``);
    ``None`` for the simulator, whose intervals are made, not read."""
    if isinstance(source, SimulatedSource):
        return None
    positioned = isinstance(source, sources.PositionedSource)
    return ledger.Ledger(counts.extracted, stream=stream if positioned else None).to_json()


def _split(folder: Any, reading: sources.Reading, rules: contract.Rules, shard_size: int) -> _Split:
    """Events to their shard files, rejected records to ``rejected.parquet``; then, if the records
    came in chunks, duplicates resolved within each shard (every record of an id is in one)."""
    tally: Tally = []
    with FrameWriter(folder / "rejected.parquet", records.REJECTED) as rejected:
        if reading.total is None:
            keys, refs = _shard_once_read(folder, reading, rules, rejected, shard_size, tally=tally)
        else:
            count = shard_count(reading.total, shard_size)
            keys = [ShardKey(k, count) for k in range(count)]
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


def _shard_once_read(
    folder: Any,
    reading: sources.Reading,
    rules: contract.Rules,
    rejected: FrameWriter,
    shard_size: int,
    *,
    tally: Tally,
) -> tuple[list[ShardKey], list[FileRef]]:
    """For a source that cannot count its records before reading them (a log read once): every
    event to the file of one shard; once the records are counted, that file is the run's only
    shard, or is split into the shards the count gives, a row group at a time."""
    whole = ShardKey(0, 1)
    refs = _write_shards(folder, [whole], reading, rules, rejected, tally=tally)
    count = shard_count(sum(counts.extracted for counts, _ in tally), shard_size)
    if count == 1:
        return [whole], refs
    keys = [ShardKey(k, count) for k in range(count)]
    with ExitStack() as stack:
        writers = [stack.enter_context(FrameWriter(folder / k.file_name("events"), EVENTS)) for k in keys]
        for frame in read_frames(refs[0]):
            shard = shard_of(frame["event_id"], count)
            for k, writer in enumerate(writers):
                writer.write(frame[shard == k].reset_index(drop=True))
    at(refs[0].path).unlink()
    return keys, [_written(writer) for writer in writers]


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
        for table in read_tables(ref):  # in Arrow: only the superseded records become a frame
            part = _part(found, first, first + table.num_rows)
            lost = np.zeros(table.num_rows, dtype=bool)
            lost[part.rows] = True
            losers = table.filter(lost).to_pandas()
            rejected.write(contract.duplicates_rejected(losers, part))
            tally.append((contract.recount_superseded(losers), Counter()))
            out.write_table(table.filter(~lost))
            first += table.num_rows
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
