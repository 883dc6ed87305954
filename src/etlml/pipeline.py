"""The pipeline's steps, one function per DAG task; the DAG file only wires them.

Each step reads its inputs from files named in the previous step's metadata, writes its output
under the run folder of the data interval, and returns metadata (paths, counts, checksums)
that is all XCom carries.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, ParamSpec, TypeVar

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa

from etlml import FEATURES, contract, db, migrations, model, quality, settings, storage, transform, warehouse
from etlml.interval import Interval
from etlml.landing import LandingFileSource
from etlml.source import RAW_COLUMNS, EventSource, SimulatedSource

log = logging.getLogger(__name__)

Normalization = Literal["model", "batch"]
DEFAULT_SHARD_SIZE = 1_000_000
"""Records per shard when the DAG does not say (its ``shard_size`` param)."""
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RunContext:
    """What a step needs to know about the DAG run it belongs to."""

    dag_id: str
    run_id: str
    interval: Interval

    @property
    def ref(self) -> str:
        """``dag_id/run_id``: recorded on the rows a run writes."""
        return f"{self.dag_id}/{self.run_id}"

    @classmethod
    def from_airflow(cls, context: Mapping[str, Any]) -> RunContext:
        """Build from an Airflow task context (``get_current_context()``)."""
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise ValueError(
                "this run has no data interval; schedule the DAG with CronDataIntervalTimetable "
                "or trigger it with a logical date"
            )
        return cls(dag_id=context["dag"].dag_id, run_id=str(context["run_id"]), interval=Interval(start, end))


_NOT_RETRYABLE = (
    db.ConnectionMissingError,
    migrations.MigrationError,
    model.ModelError,
    settings.SettingsError,
    contract.ContractError,
    quality.QualityGateError,  # a retry reads the same bad files
    quality.InvariantError,
)


def _fail_fast(func: Callable[P, R]) -> Callable[P, R]:
    """Raise configuration errors as ``AirflowFailException``: retrying cannot fix them."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except _NOT_RETRYABLE as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc

    return wrapper


def preflight(conn_id: str) -> str:
    """Check the warehouse before a run writes anything; return the champion version.

    Fails with a message that says what to do when the connection is missing, the server does not
    answer, migrations are not applied, or no usable champion is registered.
    """
    with db.connect(conn_id) as conn:
        migrations.check(conn)
        version = model.champion(conn)
        model.load(conn, version)
    return version


def _folder(run: RunContext, cfg: settings.Settings) -> Any:
    return storage.run_folder(cfg.storage_root, run.dag_id, run.interval)


def _source(cfg: settings.Settings, batch_size: int) -> EventSource:
    if cfg.source == "landing":
        return LandingFileSource(cfg.landing_root)
    return SimulatedSource(cfg.source_seed, batch_size)


def _records(source: EventSource, interval: Interval) -> tuple[int, Iterable[pd.DataFrame], bool]:
    """How many records the interval has, the records in chunks, and whether there may be more than
    one chunk (a source that cannot stream, see ``etlml.source.StreamingSource``, gives one)."""
    streaming: Any = source
    if callable(getattr(streaming, "record_count", None)) and callable(
        getattr(streaming, "record_chunks", None)
    ):
        return int(streaming.record_count(interval)), streaming.record_chunks(interval), True
    records = source.records(interval)
    return len(records), [records], False


def shard_count(records: int, shard_size: int) -> int:
    """Shards of an interval: one per ``shard_size`` records, at least one."""
    if shard_size < 1:
        raise settings.SettingsError(f"shard_size must be >= 1, got {shard_size}")
    return max(1, -(-records // shard_size))


def shard_of(ids: pd.Series, shards: int) -> np.ndarray[Any, Any]:
    """The shard of each event id, so every record of one id lands in one shard: a polynomial hash
    of its UTF-8 bytes, the same in every process and release (unlike Python's ``hash``), computed
    over the Arrow buffers a byte position at a time (several times faster than pandas' per-value
    hashing, in memory proportional to the number of ids)."""
    arrow = pa.array(ids, from_pandas=True, type=pa.large_string())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    _, offset_buffer, data_buffer = arrow.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[arrow.offset : arrow.offset + len(arrow) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = lengths.astype(np.uint64)
    power = np.uint64(1)
    shortest = int(lengths.min(initial=0))
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        for position in range(int(lengths.max(initial=0))):
            if position < shortest:
                hashes += data[starts + position].astype(np.uint64) * power
            else:
                longer = lengths > position
                hashes[longer] += data[starts[longer] + position].astype(np.uint64) * power
            power *= _HASH_BASE
        hashes ^= hashes >> np.uint64(33)
        hashes *= _HASH_MIX
        hashes ^= hashes >> np.uint64(29)
    return hashes % np.uint64(shards)


_HASH_BASE = np.uint64(1_099_511_628_211)  # the 64-bit FNV prime
_HASH_MIX = np.uint64(0xFF51AFD7ED558CCD)  # a 64-bit finalizer constant (MurmurHash3's fmix64)


def _part(name: str, shard: int, shards: int) -> str:
    return f"{name}-{shard + 1:03d}-of-{shards:03d}.parquet"


def _deduplicate_part(
    ref: storage.FileRef, rules: contract.Rules, rejected: storage.FrameWriter
) -> tuple[storage.FileRef, contract.Checked | None]:
    """Resolve the duplicates among a shard's events (every record of one id is in one shard):
    apply the contract again to the shard if an id occurs twice, and rewrite it. Returns the new
    file and the counts that move the dropped events from accepted to deduplicated."""
    if not contract.has_duplicates(storage.read_table(ref, columns=["event_id"])["event_id"]):
        return ref, None
    events = storage.read_frame(ref)
    checked = contract.apply(events, rules, provenance=True)
    rejected.write(checked.rejected)
    with storage.FrameWriter(storage.at(ref.path), contract.empty_valid(provenance=True)) as out:
        out.write(checked.valid)
    assert out.ref is not None
    dropped = checked.counts.deduplicated
    missing = {f: int(checked.valid[f].isna().sum() - events[f].isna().sum()) for f in FEATURES}
    correction = contract.Counts(
        extracted=0, accepted=-dropped, rejected=0, deduplicated=dropped, imputed=missing
    )
    return out.ref, contract.Checked(checked.valid.iloc[:0], checked.rejected.iloc[:0], correction)


@_fail_fast
def extract(
    run: RunContext,
    batch_size: int,
    source: EventSource | None = None,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    normalization: Normalization = "model",
) -> dict[str, Any]:
    """Check the warehouse, resolve the model versions the run scores with, read the interval's
    records from the source (``ETLML_SOURCE``; the simulator makes ``batch_size`` events) chunk by
    chunk and split them by the data contract into events and rejected records (``rejected.parquet``).

    Events go to ``ceil(records / shard_size)`` shard files by a hash of their id; the DAG maps
    ``transform``, ``predict`` and ``store_predictions`` over them. In ``batch`` normalization the
    batch statistics are computed here, over every shard, so sharding does not change them.
    """
    cfg = settings.load()
    with db.connect(cfg.warehouse_conn_id) as conn:
        migrations.check(conn)
        # the aliases are read once per run, here: a promotion during the run cannot mix versions
        serving = model.aliases(conn)
        version = serving.get("champion") or model.champion(conn)
        model.load(conn, version)
    source = source or _source(cfg, batch_size)
    source_name = str(getattr(source, "name", type(source).__name__))
    rules = contract.Rules(run.interval, now=datetime.now(UTC), max_future_skew=cfg.max_future_skew)
    total, chunks, streaming = _records(source, run.interval)
    shards = shard_count(total, shard_size)
    folder = _folder(run, cfg)
    parts: list[contract.Checked] = []
    empty = contract.empty_valid(provenance=True)
    rejected_types = {"raw": pa.large_binary()}
    with storage.FrameWriter(
        folder / "rejected.parquet", contract.empty_rejected(), rejected_types
    ) as rejected:
        with ExitStack() as stack:
            writers = [
                stack.enter_context(storage.FrameWriter(folder / _part("events", k, shards), empty))
                for k in range(shards)
            ]
            for chunk in chunks:
                # chunks are deduplicated per shard below, where every record of an id meets
                checked = contract.apply(chunk, rules, provenance=True, deduplicate=not streaming)
                rejected.write(checked.rejected)
                shard = shard_of(checked.valid["event_id"], shards) if shards > 1 else None
                for k, writer in enumerate(writers):
                    writer.write(checked.valid if shard is None else checked.valid[shard == k])
                parts.append(replace(checked, valid=empty, rejected=empty))
        refs = [w.ref for w in writers if w.ref is not None]
        if streaming:
            for k, ref in enumerate(refs):
                refs[k], correction = _deduplicate_part(ref, rules, rejected)
                if correction is not None:
                    parts.append(correction)
    counts = contract.total(parts)
    stats = None
    if normalization == "batch":

        def events() -> Iterable[pd.DataFrame]:
            return (b for ref in refs for b in storage.read_batches(ref, columns=list(FEATURES)))

        stats = {f: asdict(s) for f, s in transform.batch_stats(events).items()}
    log.info(
        "extracted %d records for %s from %s: %d events in %d shard(s), %d rejected %s, %d duplicates",
        counts.extracted,
        run.interval.key,
        source_name,
        counts.accepted,
        shards,
        counts.rejected,
        counts.by_reason,
        counts.deduplicated,
    )
    if counts.extra_fields:
        log.warning(
            "ignored %d unknown fields; the most frequent (records): %s",
            counts.extra_field_names,
            counts.extra_fields,
        )
    assert rejected.ref is not None
    return {
        "shards": [{**ref.as_xcom(), "shard": k, "of": shards} for k, ref in enumerate(refs)],
        "source": source_name,
        "rejected": rejected.ref.as_xcom(),
        "counts": counts.as_xcom(),
        "model_version": version,
        "challenger": serving.get("challenger"),
        "batch_stats": stats,
    }


def _shard(meta: Mapping[str, Any]) -> str:
    return f"shard {int(meta.get('shard', 0)) + 1} of {int(meta.get('of', 1))}"


@_fail_fast
def transform_step(
    run: RunContext,
    extracted: dict[str, Any],
    normalization: Normalization,
    shard: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Clean, impute and z-score one shard's events (``shard``; the only one if not given) with the
    champion's statistics, or with the batch statistics extract computed; batch by batch."""
    cfg = settings.load()
    shard = shard or extracted["shards"][0]
    version = str(extracted["model_version"])
    if normalization == "model":
        with db.connect(cfg.warehouse_conn_id) as conn:
            stats: model.Stats = model.load(conn, version).stats
    elif extracted.get("batch_stats"):
        stats = model.parse_stats("batch", extracted["batch_stats"])
    else:
        raise settings.SettingsError(
            "batch normalization needs the statistics extract computes: rerun extract"
        )
    k, shards = int(shard.get("shard", 0)), int(shard.get("of", 1))
    empty = transform.normalize(transform.clean(contract.empty_valid()), stats)
    with storage.FrameWriter(_folder(run, cfg) / _part("processed", k, shards), empty) as out:
        for raw in storage.read_batches(storage.FileRef.from_xcom(shard), columns=list(RAW_COLUMNS)):
            out.write(transform.normalize(transform.clean(raw), stats))
    assert out.ref is not None
    normalized_with = version if normalization == "model" else "batch"
    challenger = extracted.get("challenger")
    log.info(
        "normalized %d events of %s with %s statistics; champion %s, challenger %s",
        out.ref.rows,
        _shard(shard),
        normalized_with,
        version,
        challenger or "none",
    )
    return {
        **out.ref.as_xcom(),
        "shard": k,
        "of": shards,
        "model_version": version,
        "challenger": challenger,
        "normalized_with": normalized_with,
    }


def _quarantine(
    conn: psycopg.Connection[Any],
    run: RunContext,
    extracted: dict[str, Any],
    cfg: settings.Settings,
    loaded: int | None = None,
) -> quality.Audit:
    """Make the interval's ``rejected_events`` equal what extract rejected, then check and store where
    every record went (``run_audit``); raises :class:`quality.InvariantError` if they do not add up."""
    meta = extracted.get("rejected")
    rejected: warehouse.Rows = contract.empty_rejected()
    if meta:
        ref = storage.FileRef.from_xcom(meta)
        rejected = functools.partial(storage.read_batches, ref)
    merged = warehouse.upsert_rejected(conn, rejected, run.interval, run.ref)
    log.info("rejected_events for %s: %s", run.interval.key, merged.as_xcom())
    counts = contract.Counts.from_xcom(extracted["counts"])
    loaded, rejected_rows, duplicates = warehouse.interval_outcomes(conn, run.interval, loaded)
    audit = quality.Audit(
        source=str(extracted.get("source", "")),
        extracted=counts.extracted,
        loaded=loaded,
        rejected=rejected_rows,
        deduplicated=duplicates,
        max_rejected_share=cfg.max_rejected_share,
        by_reason=counts.by_reason,
        extra_fields=counts.extra_fields,
        extra_field_names=counts.extra_field_names,
        imputed=counts.imputed,
    )
    quality.check_balanced(audit, run.interval)
    warehouse.store_audit(conn, run.dag_id, run.interval, run.ref, audit.as_params())
    return audit


@_fail_fast
def load_processed(
    run: RunContext,
    processed: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    extracted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make the interval's rows in ``processed_data`` equal every shard's processed events, in one
    transaction (a first run COPYs them in; a rerun merges).

    Given extract's metadata (the DAG passes it), the same transaction also replaces the interval's
    quarantine in ``rejected_events`` and stores the run's accounting in ``run_audit`` once
    ``extracted = loaded + rejected + deduplicated`` holds. Then the quality gate fails the task,
    without retries, if the run rejected more than ``ETLML_MAX_REJECTED_SHARE`` of its records: the
    rows stay committed, but the run scores none of its events.
    """
    cfg = settings.load()
    shards = sorted(
        [processed] if isinstance(processed, Mapping) else list(processed), key=lambda m: m.get("shard", 0)
    )
    normalized = {str(m["normalized_with"]) for m in shards}
    if len(normalized) != 1:
        raise quality.InvariantError(
            f"the shards of one run were normalized differently: {sorted(normalized)}"
        )
    refs = [storage.FileRef.from_xcom(m) for m in shards]

    def events() -> Iterable[pd.DataFrame]:
        return (batch for ref in refs for batch in storage.read_batches(ref))

    with db.connect(cfg.warehouse_conn_id) as conn, conn.transaction():
        result = warehouse.upsert_processed(conn, events, run.interval, normalized.pop())
        # after the upsert the interval holds exactly the staged rows (MergeResult.staged)
        audit = _quarantine(conn, run, extracted, cfg, result.staged) if extracted is not None else None
    log.info("processed_data for %s (%d shard(s)): %s", run.interval.key, len(refs), result.as_xcom())
    if audit is None:
        return result.as_xcom()
    quality.enforce(audit, run.interval)
    return {**result.as_xcom(), "audit": audit.as_xcom()}


@_fail_fast
def predict(run: RunContext, processed: dict[str, Any]) -> dict[str, Any]:
    """Score one shard's processed rows with the champion and, if one was set, the challenger that
    the run resolved in ``extract``; one Parquet file per version, written batch by batch."""
    cfg = settings.load()
    ref = storage.FileRef.from_xcom(processed)
    versions = [str(processed["model_version"])]
    if processed.get("challenger"):
        versions.append(str(processed["challenger"]))
    with db.connect(cfg.warehouse_conn_id) as conn:
        scorers = [model.load(conn, version) for version in versions]
    k, shards = int(processed.get("shard", 0)), int(processed.get("of", 1))
    empty = pd.DataFrame(
        {
            "event_id": pd.Series(dtype="string"),
            "ts_utc": pd.Series(dtype="datetime64[us, UTC]"),
            "y_hat": pd.Series(dtype=np.float64),
        }
    )
    files = []
    for scorer in scorers:
        # batch mode keeps its per-batch z-scores; otherwise each version scores under its own statistics
        stored_z = processed["normalized_with"] in {"batch", scorer.version}
        path = _folder(run, cfg) / _part(f"predictions-{scorer.version}", k, shards)
        with storage.FrameWriter(path, empty) as out:
            for frame in storage.read_batches(ref):
                out.write(
                    frame[["event_id", "ts_utc"]].assign(y_hat=scorer.predict(frame, use_stored_z=stored_z))
                )
        assert out.ref is not None
        files.append({**out.ref.as_xcom(), "model_version": scorer.version})
        log.info(
            "scored %d events of %s with model version %s", out.ref.rows, _shard(processed), scorer.version
        )
    return {
        "model_version": versions[0],
        "challenger": processed.get("challenger"),
        "files": files,
        "shard": k,
        "of": shards,
    }


@_fail_fast
def store_predictions(run: RunContext, predicted: dict[str, Any]) -> dict[str, Any]:
    """Store one shard's predictions of every scored version, in one transaction: COPYed straight
    into ``predictions`` on a first run (load_processed committed their events before predict ran),
    merged on a rerun."""
    cfg = settings.load()
    results = {}
    with db.connect(cfg.warehouse_conn_id) as conn, conn.transaction():
        for file in predicted["files"]:
            ref = storage.FileRef.from_xcom(file)
            version = str(file["model_version"])
            rows = functools.partial(storage.read_batches, ref)
            results[version] = warehouse.upsert_predictions(
                conn, rows, version, run.ref, loaded=True
            ).as_xcom()
            log.info(
                "predictions of %s for %s, %s: %s",
                version,
                run.interval.key,
                _shard(predicted),
                results[version],
            )
    return {
        "model_version": predicted["model_version"],
        "challenger": predicted["challenger"],
        "by_version": results,
        "shard": predicted.get("shard", 0),
        "of": predicted.get("of", 1),
    }


def migrate_schema() -> list[str]:
    """Apply pending warehouse migrations; return the names of those applied."""
    with db.connect(settings.load().warehouse_conn_id) as conn:
        return [f"{m.version:04d}_{m.name}" for m in migrations.migrate(conn)]


def check_schema() -> dict[str, Any]:
    """Sanity check after migrating: all migrations applied, tables present, a usable champion."""
    conn_id = settings.load().warehouse_conn_id
    version = preflight(conn_id)
    with db.connect(conn_id) as conn:
        applied = len(migrations.applied(conn))
    log.info("warehouse schema at migration %d, champion %s", applied, version)
    return {"migrations": applied, "champion": version}


RESCORE_COLUMNS = ("event_id", "ts_utc", "f1", "f2", "f3")


@_fail_fast
def rescore(run_ref: str, version: str, start: datetime, end: datetime, chunk_size: int) -> dict[str, Any]:
    """Score every ``processed_data`` event with ``ts_utc`` in ``[start, end)`` with ``version``.

    Reads the window once through a server-side cursor and writes ``chunk_size`` predictions per
    transaction, so memory stays bounded; each chunk is an idempotent upsert, so rerunning a window
    (or resuming one that failed half way) gives the same rows. Features are normalized with the
    version's own statistics.
    """
    if not start < end:
        raise model.ModelError(
            f"empty rescore window {start.isoformat()} .. {end.isoformat()}: 'from' must be < 'to'"
        )
    if chunk_size < 1:
        raise model.ModelError(f"chunk_size must be >= 1, got {chunk_size}")
    cfg = settings.load()
    totals = {"events": 0, "chunks": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    with db.connect(cfg.warehouse_conn_id) as reader, db.connect(cfg.warehouse_conn_id) as writer:
        scorer = model.load(reader, version)
        with reader.cursor(name="rescore_window") as cursor:
            cursor.execute(db.query("rescore_window"), {"from": start, "to": end})
            while rows := cursor.fetchmany(chunk_size):
                frame = transform.clean(pd.DataFrame.from_records(rows, columns=RESCORE_COLUMNS))
                scored = frame[["event_id", "ts_utc"]].assign(y_hat=scorer.predict(frame, use_stored_z=False))
                result = warehouse.upsert_predictions(writer, scored, version, run_ref)
                totals["events"] += len(rows)
                totals["chunks"] += 1
                for key in ("inserted", "updated", "unchanged"):
                    totals[key] += result.as_xcom()[key]
                log.info(
                    "rescored chunk %d (%d events) with %s: %s", totals["chunks"], len(rows), version, result
                )
    log.info("rescored [%s, %s) with %s: %s", start.isoformat(), end.isoformat(), version, totals)
    return {"model_version": version, **totals}
