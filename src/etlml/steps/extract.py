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
import pyarrow as pa
import pyarrow.compute as pc

from etlml import FEATURES, records, settings
from etlml.errors import SettingsError
from etlml.features.stats import Stats
from etlml.features.transform import batch_stats
from etlml.ingest import contract, ledger
from etlml.ingest import source as sources
from etlml.ingest.ledger import FileEntry
from etlml.ingest.shards import id_hashes, shard_count, shard_of
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
from etlml.storage import FileRef, FrameWriter, at, read_frames, read_tables

log = logging.getLogger(__name__)

EVENTS = records.EVENT + records.PROVENANCE + records.RAW
"""The shard files: events with their provenance and raw bytes (resolving duplicates needs them, and
a record ``load_processed`` refuses as redelivered is quarantined with them; ``transform`` reads the
event columns only)."""
Tally = list[tuple[contract.Counts, Counter[str]]]
SHARD_CODEC = "lz4"
"""The shard files are the run's own, read by its next steps and deleted with its folder: LZ4 writes
them faster than zstd and reads them four times faster, for files about 1.6 times larger."""


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
    """Events to their shard files, rejected records to ``rejected.parquet``; if the records came in
    chunks, duplicates are resolved within each shard (every record of an id is in one)."""
    tally: Tally = []
    with FrameWriter(folder / "rejected.parquet", records.REJECTED) as rejected:
        if reading.total is None:
            keys, refs = _shard_once_read(folder, reading, rules, rejected, shard_size, tally=tally)
        else:
            count = shard_count(reading.total, shard_size)
            keys = [ShardKey(k, count) for k in range(count)]
            refs = _write_shards(folder, keys, reading, rules, rejected, tally=tally)
    assert rejected.ref is not None
    shards_ = tuple(Shard(key, ref) for key, ref in zip(keys, refs, strict=True))
    return _Split(shards_, rejected.ref, contract.total(tally))


def _write_shards(
    folder: Any,
    keys: list[ShardKey],
    reading: sources.Reading,
    rules: contract.Rules,
    rejected: FrameWriter,
    *,
    tally: Tally,
) -> list[FileRef]:
    """Check the records and write the accepted events to the shards ``keys``. Records that came in
    chunks are checked without deduplication, and duplicates resolved in each shard before it is
    written; a shard whose events the memory could not hold until the end is written as they come,
    and rewritten without its superseded events. Events of a source whose ids are distinct by
    construction (the simulator) are written as they come, with nothing to resolve."""
    with ExitStack() as stack:
        writers = [
            stack.enter_context(FrameWriter(folder / k.file_name("events"), EVENTS, compression=SHARD_CODEC))
            for k in keys
        ]
        shards = _Shards(writers, rejected, tally, hold=reading.streamed and not reading.distinct_ids)
        for chunk in reading.chunks:
            checked = contract.apply(chunk, rules, provenance=True, deduplicate=not reading.streamed)
            rejected.write(checked.rejected)
            shards.add(checked.valid)
            tally.append((checked.counts, checked.extra))
        spilled = shards.finish()
    refs = [_written(writer) for writer in writers]
    return [
        _resolve_duplicates(ref, found, rejected, tally) if found else ref
        for ref, found in zip(refs, spilled, strict=True)
    ]


_KEYS = ["event_id", "source_file", "row_number"]
_HELD_BYTES = 256 << 20
"""Events held in memory, over all shards, before the shards are written as they come (Arrow bytes:
a 1,000,000-record interval of the landing benchmark holds about 160 MB)."""


class _Shards:
    """The accepted events of an interval to their shard files, by a hash of their id. With ``hold``
    (records checked chunk by chunk, duplicates among them), each shard's events are held until the
    last chunk, then written once without the events a later delivery supersedes; past
    :data:`_HELD_BYTES` the held events are written as they are, and the shards that had some are
    resolved by :func:`_resolve_duplicates` after they are complete."""

    def __init__(
        self, writers: list[FrameWriter], rejected: FrameWriter, tally: Tally, *, hold: bool
    ) -> None:
        self.writers, self.rejected, self.tally, self.hold = writers, rejected, tally, hold
        self.held: list[list[pa.Table]] = [[] for _ in writers]
        self.seen: list[list[pa.Table]] = [[] for _ in writers]  # the keys of events written already
        self.held_bytes = 0

    def add(self, events: pd.DataFrame) -> None:
        if not len(events):
            return
        table = self.writers[0].table(events)  # split in Arrow: pandas' masks cost more
        shard = shard_of(events["event_id"], len(self.writers)) if len(self.writers) > 1 else None
        for k, writer in enumerate(self.writers):
            part = table if shard is None else table.filter(shard == k)
            if not self.hold:
                writer.write_table(part)
            elif part.num_rows:
                self.held[k].append(part)
                self.held_bytes += part.nbytes
        if self.held_bytes > _HELD_BYTES:
            self._spill()

    def _spill(self) -> None:
        for k in range(len(self.writers)):
            self._write_held(k)
        self.held_bytes = 0

    def _write_held(self, k: int) -> None:
        """Write shard ``k``'s held events, keeping their keys."""
        for table in self.held[k]:
            self.writers[k].write_table(table)
            self.seen[k].append(_keys(table))
        self.held[k] = []

    def finish(self) -> list[contract.Superseded | None]:
        """Write what is held; for each shard, the superseded events it still holds on disk. A shard
        that had to be written as its events came is written to the end first: the keys it is
        resolved by are then all that is held of it."""
        spilled: list[contract.Superseded | None] = []
        for k, writer in enumerate(self.writers):
            if self.seen[k]:
                self._write_held(k)
            held, self.held[k] = self.held[k], []
            found = _superseded(self.seen[k] + [_keys(table) for table in held]) if self.hold else None
            if found is None or self.seen[k]:
                for table in held:
                    writer.write_table(table)
                spilled.append(found)
            else:
                _drop(held, found, self.rejected, self.tally, writer)
                spilled.append(None)
            self.seen[k] = []
        return spilled


def _keys(events: pa.Table) -> pa.Table:
    """The :data:`_KEYS` of ``events``, the file name dictionary-encoded (a stream's interval has one
    name, a landing interval's a few: held for millions of events, the names alone were 100s of MB)."""
    keys = events.select(_KEYS)
    name = keys.schema.get_field_index("source_file")
    return keys.set_column(name, "source_file", pc.dictionary_encode(keys["source_file"]))


def _superseded(keys: list[pa.Table]) -> contract.Superseded | None:
    """The superseded events among ``keys`` (tables of :data:`_KEYS`), ``None`` if no id repeats.
    Only the events whose id hashes like another's are compared by id: an interval's ids counted
    whole took hundreds of MB at millions of events."""
    if not keys:
        return None
    table = pa.concat_tables(keys)
    candidates = _repeated(np.concatenate([id_hashes(ids) for ids in table["event_id"].chunks]))
    if not len(candidates):
        return None
    some = pa.array(candidates)
    found = contract.superseded(
        table["event_id"].take(some), table["source_file"].take(some), table["row_number"].take(some)
    )
    if not len(found.rows):
        return None
    return contract.Superseded(candidates[found.rows], found.kept_file, found.kept_row)


def _repeated(hashes: np.ndarray[Any, np.dtype[np.uint64]]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The positions, ascending, of the hashes that occur more than once."""
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    shared = np.zeros(len(hashes), dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    return np.sort(order[shared])


def _drop(
    tables: Iterable[pa.Table],
    found: contract.Superseded,
    rejected: FrameWriter,
    tally: Tally,
    out: FrameWriter,
) -> None:
    """Write ``tables`` (a shard's events, in order) to ``out`` without the ``found`` superseded
    events, which go to ``rejected``."""
    first = 0
    for table in tables:  # in Arrow: only the superseded records become a frame
        part = _part(found, first, first + table.num_rows)
        first += table.num_rows
        if not len(part.rows):
            out.write_table(table)
            continue
        lost = np.zeros(table.num_rows, dtype=bool)
        lost[part.rows] = True
        losers = table.filter(lost).to_pandas()
        rejected.write(contract.duplicates_rejected(losers, part))
        tally.append((contract.recount_superseded(losers), Counter()))
        out.write_table(table.filter(~lost))


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
        writers = [
            stack.enter_context(FrameWriter(folder / k.file_name("events"), EVENTS, compression=SHARD_CODEC))
            for k in keys
        ]
        for table in read_tables(refs[0]):  # in Arrow: as pandas frames, the split held ~3x its rows
            shard = shard_of(table["event_id"].combine_chunks(), count)
            for k, writer in enumerate(writers):
                writer.write_table(table.filter(shard == k))
    at(refs[0].path).unlink()
    return keys, [_written(writer) for writer in writers]


def _written(writer: FrameWriter) -> FileRef:
    assert writer.ref is not None, "a FrameWriter has a ref once it closed without an error"
    return writer.ref


def _resolve_duplicates(
    ref: FileRef, found: contract.Superseded, rejected: FrameWriter, tally: Tally
) -> FileRef:
    """Quarantine the ``found`` events of a complete shard that a later delivery of their id
    supersedes, and rewrite the shard without them; memory holds one row group: the shard is read
    and rewritten row group by row group."""
    path = at(ref.path)
    resolving = at(f"{ref.path}.resolving")
    with FrameWriter(resolving, EVENTS, compression=SHARD_CODEC) as out:
        _drop(read_tables(ref), found, rejected, tally, out)
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
