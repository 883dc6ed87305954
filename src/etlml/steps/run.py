"""What every step shares: the run it belongs to, the payloads XCom carries, and failing fast.

Each step reads the files a previous step named, writes its output under the run folder of the data
interval, and returns a frozen payload; ``to_xcom``/``from_xcom`` convert it to the small JSON that
XCom stores (paths, row counts, checksums, model versions; never rows).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, ParamSpec, TypeVar

import psycopg

from etlml.errors import PermanentError, SettingsError
from etlml.features.stats import FeatureStats, parse_stats, stats_json
from etlml.ingest.contract import Counts
from etlml.ingest.ledger import Ledger, Shrinkage, shrinkage
from etlml.interval import Interval
from etlml.models.serving import Role, Serving
from etlml.quality import Audit
from etlml.settings import Settings
from etlml.storage import FileRef, claim, run_folder
from etlml.warehouse import writes
from etlml.warehouse.writes import MergeResult

log = logging.getLogger(__name__)

Normalization = Literal["model", "batch"]
NORMALIZATIONS: tuple[Normalization, ...] = ("model", "batch")
DEFAULT_SHARD_SIZE = 1_000_000
"""Records per shard when the DAG does not say (its ``shard_size`` param)."""
DEFAULT_SIMULATED_EVENTS = 200
"""Events the simulator makes per interval when the DAG does not say (``simulated_events``)."""
P = ParamSpec("P")
R = TypeVar("R")


def fail_fast(func: Callable[P, R]) -> Callable[P, R]:
    """Raise a :class:`~etlml.errors.PermanentError` as ``AirflowFailException``: no retry can fix it."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PermanentError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc

    return wrapper


@dataclass(frozen=True)
class RunContext:
    """What a step needs to know about the DAG run it belongs to."""

    dag_id: str
    run_id: str
    interval: Interval
    accept_smaller_source: bool = False
    triggered_by: str | None = None
    dag_version_id: str | None = None

    @property
    def ref(self) -> str:
        """``dag_id/run_id``: recorded on the rows a run writes."""
        return f"{self.dag_id}/{self.run_id}"

    def folder(self, cfg: Settings) -> Any:
        """The folder of this DAG run of the interval under the storage root (an ``ObjectStoragePath``),
        created with the marker naming the run (``90_housekeeping`` reads it)."""
        return claim(
            run_folder(cfg.storage_root, self.dag_id, self.interval, self.run_id), self.dag_id, self.run_id
        )

    @classmethod
    @fail_fast
    def from_airflow(cls, context: Mapping[str, Any]) -> RunContext:
        """Build from an Airflow task context (``get_current_context()``). A run without a usable data
        interval fails at once: a retry has the same (missing) interval."""
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise SettingsError(
                "this run has no data interval; schedule the DAG with CronDataIntervalTimetable "
                "or trigger it with a logical date"
            )
        try:
            interval = Interval(start, end)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        params = context.get("params") or {}
        dag_run, ti = context.get("dag_run"), context.get("ti")
        version = getattr(ti, "dag_version_id", None)
        return cls(
            dag_id=context["dag"].dag_id,
            run_id=str(context["run_id"]),
            interval=interval,
            accept_smaller_source=params.get("accept_smaller_source") is True,
            triggered_by=_triggered_by(dag_run),
            dag_version_id=None if version is None else str(version),
        )


def _triggered_by(dag_run: Any) -> str | None:
    """Who started the run: the user who triggered it, else how it came (``scheduled``, ...)."""
    if dag_run is None:
        return None
    user = getattr(dag_run, "triggering_user_name", None)
    if user:
        return str(user)
    kind = getattr(dag_run, "run_type", None)
    return None if kind is None else str(getattr(kind, "value", kind))


def simulated_events(params: Mapping[str, Any]) -> int:
    """The DAG param ``simulated_events``; the old name ``batch_size``, when given, is still obeyed
    for this release, with a warning."""
    old = params.get("batch_size")
    if old is None:
        return int(params.get("simulated_events", DEFAULT_SIMULATED_EVENTS))
    log.warning(
        "the DAG param batch_size is deprecated and will be removed in the next release; "
        "it is the number of events the simulator makes per interval: pass simulated_events=%d instead",
        int(old),
    )
    return int(old)


@dataclass(frozen=True)
class ShardKey:
    """Which shard of a run's events a payload is about: ``index`` (from 0) of ``of``."""

    index: int = 0
    of: int = 1

    @property
    def label(self) -> str:
        return f"shard {self.index + 1} of {self.of}"

    def file_name(self, stem: str) -> str:
        """``<stem>-<k>-of-<n>.parquet``: each shard's files are its own."""
        return f"{stem}-{self.index + 1:03d}-of-{self.of:03d}.parquet"

    def to_xcom(self) -> dict[str, int]:
        return {"shard": self.index, "of": self.of}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> ShardKey:
        return cls(int(data.get("shard", 0)), int(data.get("of", 1)))


@dataclass(frozen=True)
class Shard:
    """One shard of a run's events, as ``extract`` wrote it: what the mapped tasks expand over."""

    key: ShardKey
    events: FileRef

    def to_xcom(self) -> dict[str, Any]:
        return {**self.events.to_xcom(), **self.key.to_xcom()}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> Shard:
        return cls(ShardKey.from_xcom(data), FileRef.from_xcom(data))


@dataclass(frozen=True)
class RunPlan:
    """What ``extract`` decided for the whole run, read by the tasks after it (XCom key ``run``):
    the model versions to score with, the statistics to normalize with, the records' accounting and
    the file of rejected records; ``found``: ``False`` when the source did not have the interval at
    all (a missing landing partition), so the warehouse keeps what it stored for it;
    ``first_entry_id``: a stream source's id of the interval's first entry (for ``run_audit``);
    ``files``: the file listing the landing files the run read (:data:`etlml.records.FILES`);
    ``ledger``: what the run read of its source but the files (:class:`etlml.ingest.ledger.Ledger`
    as JSON; ``None`` for the simulator)."""

    source: str
    counts: Counts
    rejected: FileRef
    serving: Serving
    normalization: Normalization
    stats: dict[str, FeatureStats]
    found: bool = True
    first_entry_id: str | None = None
    files: FileRef | None = None
    ledger: dict[str, Any] | None = None

    @property
    def normalized_with(self) -> str:
        """What ``processed_data.normalized_with`` records: the champion's version, or ``batch``."""
        return self.serving.champion if self.normalization == "model" else "batch"

    def to_xcom(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "counts": self.counts.to_xcom(),
            "rejected": self.rejected.to_xcom(),
            **self.serving.to_xcom(),
            "normalization": self.normalization,
            "stats": stats_json(self.stats),
            "found": self.found,
            "first_entry_id": self.first_entry_id,
            "files": None if self.files is None else self.files.to_xcom(),
            "ledger": self.ledger,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> RunPlan:
        if "stats" not in data or data.get("normalization") not in NORMALIZATIONS:
            raise SettingsError(
                "this run was planned by an older etlml release (its extract XCom has no statistics); "
                "clear the run from extract so that this release plans it again"
            )
        normalization: Normalization = "batch" if data["normalization"] == "batch" else "model"
        serving = Serving.from_xcom(data)
        stats_of = serving.champion if normalization == "model" else "batch"
        return cls(
            source=str(data["source"]),
            counts=Counts.from_xcom(data["counts"]),
            rejected=FileRef.from_xcom(data["rejected"]),
            serving=serving,
            normalization=normalization,
            stats=parse_stats(stats_of, data["stats"]),
            found=bool(data.get("found", True)),
            first_entry_id=data.get("first_entry_id"),
            files=FileRef.from_xcom(data["files"]) if data.get("files") else None,
            ledger=data.get("ledger"),
        )


@dataclass(frozen=True)
class Extracted:
    """``extract``'s outcome: the run's plan and its shards."""

    plan: RunPlan
    shards: tuple[Shard, ...]


@dataclass(frozen=True)
class ProcessedShard:
    """One shard's processed events, as ``transform`` wrote them, and the shard's events file they
    came from (``None`` in payloads of older releases)."""

    key: ShardKey
    processed: FileRef
    normalized_with: str
    events: FileRef | None = None

    def to_xcom(self) -> dict[str, Any]:
        events = {} if self.events is None else {"events": self.events.to_xcom()}
        return {
            **self.processed.to_xcom(),
            **self.key.to_xcom(),
            "normalized_with": self.normalized_with,
            **events,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> ProcessedShard:
        events = FileRef.from_xcom(data["events"]) if data.get("events") else None
        return cls(ShardKey.from_xcom(data), FileRef.from_xcom(data), str(data["normalized_with"]), events)


@dataclass(frozen=True)
class LoadRef:
    """Which load of the interval ``predict`` scores: its ``load_id`` (``run_audit.load_id``;
    ``None`` when the run kept what the interval held and loaded nothing) and the file of event ids
    it refused as redelivered (``None``: there were none), which ``predict`` must not score."""

    load_id: str | None
    redelivered: FileRef | None = None

    def to_xcom(self) -> dict[str, Any]:
        redelivered = None if self.redelivered is None else self.redelivered.to_xcom()
        return {"load_id": self.load_id, "redelivered": redelivered}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> LoadRef:
        if "load_id" not in data:
            raise SettingsError(
                "this run was loaded by an older etlml release (its load_processed XCom has no load_id); "
                "clear the run from load_processed so that this release loads it again"
            )
        redelivered = FileRef.from_xcom(data["redelivered"]) if data.get("redelivered") else None
        return cls(None if data["load_id"] is None else str(data["load_id"]), redelivered)


@dataclass(frozen=True)
class Loaded:
    """``load_processed``'s outcome: what the merge did, the run's audit, and the load ``predict``
    scores; ``kept``: the rows the interval held and kept, when its partition was missing."""

    merge: MergeResult
    audit: Audit
    ref: LoadRef
    kept: tuple[int, int] | None = None

    def to_xcom(self) -> dict[str, Any]:
        kept = {} if self.kept is None else {"kept": {"processed": self.kept[0], "rejected": self.kept[1]}}
        return {**self.merge.to_xcom(), "audit": self.audit.to_xcom(), **self.ref.to_xcom(), **kept}


@dataclass(frozen=True)
class ScoredFile:
    """The predictions of one model version for one shard."""

    model_version: str
    role: Role
    predictions: FileRef

    def to_xcom(self) -> dict[str, Any]:
        return {**self.predictions.to_xcom(), "model_version": self.model_version, "role": self.role}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> ScoredFile:
        role: Role = "challenger" if data.get("role") == "challenger" else "champion"
        return cls(str(data["model_version"]), role, FileRef.from_xcom(data))


def _versions(files: Sequence[tuple[str, Role]]) -> dict[str, Any]:
    """The ``model_version`` (champion) and ``challenger`` keys of a shard's payload, for readers of
    XCom in the UI."""
    by_role = {role: version for version, role in files}
    return {"model_version": by_role.get("champion"), "challenger": by_role.get("challenger")}


@dataclass(frozen=True)
class PredictedShard:
    """One shard scored by every version the run serves that could score it, as ``predict`` wrote
    it: the load it scored (``load_id``), and why the challenger could not (``challenger_error``)."""

    key: ShardKey
    files: tuple[ScoredFile, ...]
    load_id: str | None = None
    challenger_error: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return {
            **_versions([(f.model_version, f.role) for f in self.files]),
            "files": [f.to_xcom() for f in self.files],
            **self.key.to_xcom(),
            "load_id": self.load_id,
            "challenger_error": self.challenger_error,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> PredictedShard:
        if "load_id" not in data:
            raise SettingsError(
                "this shard was scored by an older etlml release (its predict XCom has no load_id); "
                "clear the run from load_processed so that this release loads and scores it again"
            )
        return cls(
            ShardKey.from_xcom(data),
            tuple(ScoredFile.from_xcom(f) for f in data["files"]),
            None if data["load_id"] is None else str(data["load_id"]),
            data.get("challenger_error"),
        )


@dataclass(frozen=True)
class StoredShard:
    """What ``store_predictions`` did with one shard, per model version; nothing, when a later run
    loaded the interval again after this shard was scored (``superseded_by``: that run)."""

    key: ShardKey
    stored: tuple[tuple[ScoredFile, MergeResult], ...]
    superseded_by: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return {
            **_versions([(f.model_version, f.role) for f, _ in self.stored]),
            "by_version": {f.model_version: result.to_xcom() for f, result in self.stored},
            **self.key.to_xcom(),
            "superseded_by": self.superseded_by,
        }


class SmallerSourceError(PermanentError, RuntimeError):
    """The source now holds less than the interval's stored run read: a rerun would store less."""


def ledger_shrinkage(stored: Ledger | None, read: Ledger | None) -> Shrinkage:
    """What the source lacks of what the interval's stored run read (:mod:`etlml.ingest.ledger`'s
    rule); nothing when either side has no ledger (the simulator, rows of older releases)."""
    if stored is None or read is None:
        return Shrinkage()
    return shrinkage(stored, read)


def accept_smaller_source(run: RunContext, shrunk: Shrinkage) -> dict[str, Any]:
    """What ``run_audit.smaller_source_accepted`` records of a run triggered with
    ``accept_smaller_source`` over a smaller source: who, which run, when, what was missing."""
    log.warning(
        "%s: the source holds less than the stored run read (%s); loading it anyway, as the run's param "
        "accept_smaller_source asks (triggered by %s): what the source no longer holds is removed",
        run.interval.key,
        shrunk.describe(),
        run.triggered_by or "unknown",
    )
    return {
        "by": run.triggered_by,
        "run": run.ref,
        "at": datetime.now(UTC).isoformat(),
        "missing": shrunk.to_json(),
    }


def record_smaller_source_refusal(conn: psycopg.Connection[Any], run: RunContext, shrunk: Shrinkage) -> None:
    """Mark the interval's audit row, in the caller's transaction (under the interval's lock, so no
    later load can be stamped with it): this run found its source smaller and stores nothing else."""
    writes.record_refusal(
        conn,
        run.dag_id,
        run.interval,
        {"run": run.ref, "at": datetime.now(UTC).isoformat(), "missing": shrunk.to_json()},
    )


def smaller_source_error(run: RunContext, shrunk: Shrinkage) -> SmallerSourceError:
    """The task's failure, without retry, saying what is missing and how an operator accepts it."""
    return SmallerSourceError(
        f"{run.interval.key}: the source holds less than the interval's stored run read, so this run "
        f"would store less; nothing was written. Missing: {shrunk.describe()}. If the source really lost "
        "this data (or it was withdrawn on purpose), trigger a run of the interval with the param "
        '{"accept_smaller_source": true}; run_audit records who did'
    )
