"""The data contract of incoming records, in one place: pure, vectorized checks, no I/O, no clock.

:func:`apply` takes the records a source read (:data:`etlml.records.RECORD`) and splits them into
the events that satisfy the contract (:data:`etlml.records.EVENT`) and the rejected records
(:data:`etlml.records.REJECTED`), each with the first reason of :data:`REASONS` it fails, a message,
its provenance and its raw bytes. Every record ends up in exactly one of three places, so
``extracted == accepted + rejected + deduplicated`` always holds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etlml import DEFAULT_MAX_ABS_VALUE, FEATURES
from etlml.errors import PermanentError
from etlml.interval import Interval
from etlml.records import DUPLICATE, EVENT, PROVENANCE, REJECTED

MAX_EVENT_ID_LENGTH = 128

# Reason codes in the order the rules are checked: a record is rejected with the first one it fails.
REASONS: dict[str, str] = {
    "unparseable_file": "the whole file cannot be read (bad gzip or Parquet data, undecodable CSV header, "
    "CSV header without event_id and ts_utc, for labels event_id, y_true and observed_at); one record "
    "with row_number 0 and the file's first 64 KiB",
    "unsupported_file": "the file's extension is not .jsonl, .csv, .parquet, .jsonl.gz or .csv.gz, or the "
    "file is a symbolic link (never followed: the record holds nothing of its target)",
    "file_too_large": "the file is larger than the size limit (ETLML_MAX_FILE_BYTES) as stored or, "
    "gzip-compressed, decompressed; one record with row_number 0 and the file's first 64 KiB",
    "invalid_encoding": "the record is not valid UTF-8 (or a JSON string escapes a lone surrogate)",
    "malformed_record": "a JSON line that is not a JSON object, or a CSV row whose field count differs "
    "from the header's",
    "missing_event_id": "event_id absent, null, empty or blank",
    "invalid_event_id": f"event_id not a string, longer than {MAX_EVENT_ID_LENGTH} characters, "
    "or containing control characters",
    "invalid_timestamp": "ts_utc absent, not ISO-8601 with a UTC offset, or not a real date and time",
    "invalid_number": "f1, f2 or f3 present but not a finite number",
    "out_of_range": "f1, f2 or f3 a finite number of magnitude above ETLML_MAX_ABS_VALUE (default 1e15)",
    "future_timestamp": "ts_utc more than the allowed skew after both the moment extract ran and the end "
    "of the run's interval (the producer's clock is ahead)",
    "outside_interval": "ts_utc outside the run's data interval [start, end) (for a stream: the interval "
    "of the entry's arrival, widened by ETLML_STREAM_GRACE_SECONDS on each side)",
    "duplicate": "another record of the run has the same event_id and was kept instead "
    "(counted as deduplicated, not as rejected)",
}
READER_REASONS = frozenset(
    {
        "unparseable_file",
        "unsupported_file",
        "file_too_large",
        "invalid_encoding",
        "malformed_record",
        "invalid_event_id",
    }
)
TOP_EXTRA_FIELDS = 5
EXCERPT_CHARS = 80

_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
_TIMESTAMP = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})"
)
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"

Mask = np.ndarray[Any, np.dtype[np.bool_]]


class ContractError(PermanentError, RuntimeError):
    """The contract's own bookkeeping does not add up: a bug, never a property of the data."""


@dataclass(frozen=True)
class Rules:
    """What the checks depend on besides the records: the run's interval and its clock.

    The clock never decides whether a record is accepted: an event inside the interval is accepted
    even by a run that starts before the interval ends, so a rerun accepts the same events. It only
    tells ``future_timestamp`` from ``outside_interval`` for events after the interval.

    ``tolerance``: how far outside the interval an event's ``ts_utc`` may lie and still be accepted
    (0 by default). A stream source files an event under the interval of its arrival, so an event
    stamped just before a boundary and arriving just after it is accepted by the later interval.
    ``max_abs_value``: the largest magnitude of a feature accepted (``out_of_range`` beyond it).
    """

    interval: Interval
    now: datetime  # when extract ran
    max_future_skew: timedelta
    tolerance: timedelta = timedelta(0)
    max_abs_value: float = DEFAULT_MAX_ABS_VALUE

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Rules.now must be timezone-aware")


@dataclass(frozen=True)
class Counts:
    """Where the records went, and what was noticed about the accepted ones."""

    extracted: int
    accepted: int
    rejected: int  # every reason but ``duplicate``
    deduplicated: int
    by_reason: dict[str, int] = field(default_factory=dict)  # rejected only, nonzero, most frequent first
    extra_fields: dict[str, int] = field(default_factory=dict)  # the most frequent unknown fields
    extra_field_names: int = 0  # how many distinct unknown fields were seen
    imputed: dict[str, int] = field(default_factory=dict)  # accepted events missing each feature

    @property
    def balanced(self) -> bool:
        return self.extracted == self.accepted + self.rejected + self.deduplicated

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.extracted if self.extracted else 0.0

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, meta: Mapping[str, Any]) -> Counts:
        return cls(**{k: meta[k] for k in cls.__dataclass_fields__ if k in meta})


@dataclass(frozen=True)
class Checked:
    """The outcome of :func:`apply`."""

    valid: pd.DataFrame  # records.EVENT (with provenance and raw bytes if asked for)
    rejected: pd.DataFrame  # records.REJECTED, ordered by source_file and row_number
    counts: Counts
    extra: Counter[str] = field(default_factory=Counter)  # every unknown field -> records carrying it


def total(parts: Sequence[tuple[Counts, Counter[str]]]) -> Counts:
    """The counts of records checked in parts (chunks of one interval, each with its unknown fields
    and the records carrying them), as if checked at once."""
    extra: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    imputed: Counter[str] = Counter()
    for counts, part_extra in parts:
        extra.update(part_extra)
        by_reason.update(counts.by_reason)
        imputed.update(counts.imputed)
    summed = Counts(
        extracted=sum(c.extracted for c, _ in parts),
        accepted=sum(c.accepted for c, _ in parts),
        rejected=sum(c.rejected for c, _ in parts),
        deduplicated=sum(c.deduplicated for c, _ in parts),
        by_reason=_ranked(by_reason),
        extra_fields=_top(extra),
        extra_field_names=len(extra),
        imputed={f: imputed[f] for f in FEATURES if imputed[f]},
    )
    if not summed.balanced:
        raise ContractError(f"records do not add up: {summed}")
    return summed


def _ranked(counts: Mapping[str, int]) -> dict[str, int]:
    """Nonzero counts, most frequent first, ties by name."""
    return {k: int(n) for k, n in sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0]))) if n}


def _top(extra: Counter[str]) -> dict[str, int]:
    return {printable(name)[:EXCERPT_CHARS]: n for name, n in extra.most_common(TOP_EXTRA_FIELDS)}


def excerpt(value: object) -> str:
    """A printable, bounded rendering of an offending value for a message (the raw record keeps it all)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= EXCERPT_CHARS:
        return repr(text)
    return f"{text[:EXCERPT_CHARS]!r}... ({len(text)} characters)"


def printable(text: str) -> str:
    """``text`` as PostgreSQL can store it: lone surrogates and NUL written as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


class Verdicts:
    """The first reason and message of each record, filled rule by rule."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.message = np.full(n, None, dtype=object)
        self.open: Mask = np.ones(n, dtype=bool)  # not rejected (yet)

    def flag(self, failing: Mask, code: str, messages: pd.Series) -> None:
        """Reject the still-open records in ``failing`` with ``code``; ``messages`` is indexed by row."""
        rows = np.flatnonzero(failing & self.open)
        self.reason[rows] = code
        self.message[rows] = messages.iloc[rows].to_numpy(dtype=object)
        self.open[rows] = False


def _mask(values: pd.Series) -> Mask:
    return values.fillna(False).to_numpy(dtype=bool)


def lazy_messages(rows: Mask, render: Any, index: pd.Index) -> pd.Series:
    """Messages only for ``rows``: rendering every record would cost time on large, clean chunks."""
    out = pd.Series(None, index=index, dtype=object)
    picked = np.flatnonzero(rows)
    out.iloc[picked] = [render(i) for i in picked]
    return out


def _complete(records: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in PROVENANCE.names if c not in records]
    if missing:
        raise ContractError(f"records need provenance columns {missing}")
    frame = records.reset_index(drop=True)
    for name in (*EVENT.names, "raw", "problem", "problem_detail", "extra_fields"):
        if name not in frame:
            frame[name] = pd.Series(None, index=frame.index, dtype=object)
    return frame


def _as_text(series: pd.Series) -> pd.Series:
    return series if isinstance(series.dtype, pd.StringDtype) else series.astype("string")


def check_ids(frame: pd.DataFrame, verdicts: Verdicts) -> pd.Series:
    ids = _as_text(frame["event_id"])
    blank = _mask(ids.str.strip().str.len() == 0)
    missing = ids.isna().to_numpy(dtype=bool) | blank
    verdicts.flag(
        missing,
        "missing_event_id",
        lazy_messages(
            missing, lambda i: "event_id is blank" if blank[i] else "event_id is missing", frame.index
        ),
    )
    lengths = ids.str.len().fillna(0).to_numpy(dtype=np.int64)
    too_long = lengths > MAX_EVENT_ID_LENGTH
    control = _mask(ids.str.contains(_CONTROL, regex=True))
    bad = (too_long | control) & ~missing

    def why(i: int) -> str:
        if too_long[i]:
            limit = MAX_EVENT_ID_LENGTH
            return f"event_id has {lengths[i]} characters, more than {limit}: {excerpt(ids.iloc[i])}"
        return f"event_id contains control characters: {excerpt(ids.iloc[i])}"

    verdicts.flag(bad, "invalid_event_id", lazy_messages(bad, why, frame.index))
    return ids


def parse_timestamps(series: pd.Series) -> tuple[pd.Series, Mask]:
    """UTC microsecond timestamps (NaT where invalid) and where a value was given at all."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        parsed = series.dt.tz_convert("UTC").dt.as_unit("us")
        return parsed, series.notna().to_numpy(dtype=bool)
    text = _as_text(series).str.strip()
    given = _mask(text.str.len() > 0)
    well_formed = _mask(text.str.fullmatch(_TIMESTAMP)) & given
    # at most microseconds (PostgreSQL's precision): more digits would also switch pandas to
    # nanoseconds, whose range ends in 2262, and make a row's validity depend on its batch mates
    trimmed = text.where(well_formed).str.replace(r"(\.[0-9]{6})[0-9]+", r"\1", regex=True)
    parsed = pd.to_datetime(trimmed, utc=True, format="ISO8601", errors="coerce").dt.as_unit("us")
    return parsed, given


def _check_timestamps(frame: pd.DataFrame, verdicts: Verdicts) -> pd.Series:
    parsed, given = parse_timestamps(frame["ts_utc"])
    bad = parsed.isna().to_numpy(dtype=bool)
    raw = frame["ts_utc"]

    def why(i: int) -> str:
        if not given[i]:
            return "ts_utc is missing"
        return f"ts_utc is not an ISO-8601 date and time with a UTC offset: {excerpt(raw.iloc[i])}"

    verdicts.flag(bad, "invalid_timestamp", lazy_messages(bad, why, frame.index))
    return parsed


def parse_numbers(series: pd.Series) -> tuple[np.ndarray[Any, np.dtype[np.float64]], Mask]:
    """Float values (NaN where missing) and where a given value is not a finite number."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        given = series.notna().to_numpy(dtype=bool)
        return np.where(given, values, np.nan), given & ~np.isfinite(values)
    text = _as_text(series).str.strip()
    given = _mask(text.str.len() > 0)
    numeric = _mask(text.str.fullmatch(_NUMBER)) & given
    values = _floats(text.where(numeric))
    invalid = given & ~(numeric & np.isfinite(values))
    return np.where(given & ~invalid, values, np.nan), invalid


def _floats(text: pd.Series) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Numbers written as :data:`_NUMBER` matches (NaN where null) as floats, correctly rounded (one
    too large for a float is infinite), parsed by Arrow; each value on its own, so ``-0`` is -0.0
    whatever the other values (pandas' ``to_numeric`` made it 0 when every value was an integer)."""
    try:
        parsed = pc.cast(pa.array(text.array, type=pa.large_string()), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        coerced = pd.to_numeric(text, errors="coerce")
        return np.asarray(coerced.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)


def _check_numbers(frame: pd.DataFrame, verdicts: Verdicts) -> dict[str, np.ndarray[Any, Any]]:
    values, invalid = {}, {}
    for feature in FEATURES:
        values[feature], invalid[feature] = parse_numbers(frame[feature])
    bad = np.logical_or.reduce([invalid[f] for f in FEATURES])

    def why(i: int) -> str:
        return "; ".join(
            f"{f} is not a finite number: {excerpt(frame[f].iloc[i])}" for f in FEATURES if invalid[f][i]
        )

    verdicts.flag(bad, "invalid_number", lazy_messages(bad, why, frame.index))
    return values


def out_of_range(values: np.ndarray[Any, np.dtype[np.float64]], bound: float) -> Mask:
    """Where a parsed value's magnitude exceeds ``bound`` (NaN, a missing value, never does)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(np.abs(values) > bound, dtype=bool)


def bound_message(name: str, value: object, bound: float) -> str:
    return (
        f"{name} is {excerpt(value)}, of magnitude above ETLML_MAX_ABS_VALUE={bound:g} (raise the bound "
        "if such values are real)"
    )


def _check_ranges(
    frame: pd.DataFrame, values: dict[str, np.ndarray[Any, Any]], rules: Rules, verdicts: Verdicts
) -> None:
    beyond = {f: out_of_range(values[f], rules.max_abs_value) for f in FEATURES}
    bad = np.logical_or.reduce([beyond[f] for f in FEATURES])

    def why(i: int) -> str:
        return "; ".join(
            bound_message(f, frame[f].iloc[i], rules.max_abs_value) for f in FEATURES if beyond[f][i]
        )

    verdicts.flag(bad, "out_of_range", lazy_messages(bad, why, frame.index))


def _check_time_window(ts: pd.Series, rules: Rules, verdicts: Verdicts) -> None:
    micros = ts.to_numpy(dtype="datetime64[us]")
    valid = ~np.isnat(micros)
    horizon = max(rules.now, rules.interval.end) + rules.max_future_skew
    latest = np.datetime64(pd.Timestamp(horizon).tz_convert(None), "us")
    # in pandas: Airflow's pendulum bounds minus a timedelta lose their time zone
    tolerance = pd.Timedelta(rules.tolerance)
    start = np.datetime64((pd.Timestamp(rules.interval.start) - tolerance).tz_convert(None), "us")
    end = np.datetime64((pd.Timestamp(rules.interval.end) + tolerance).tz_convert(None), "us")
    future = valid & (micros > latest)
    skew = int(rules.max_future_skew.total_seconds())
    verdicts.flag(
        future,
        "future_timestamp",
        lazy_messages(
            future,
            lambda i: f"ts_utc {ts.iloc[i].isoformat()} is more than {skew} s in the future",
            ts.index,
        ),
    )
    outside = valid & ((micros < start) | (micros >= end))
    bounds = f"[{rules.interval.start.isoformat()}, {rules.interval.end.isoformat()})"
    if rules.tolerance:
        bounds += f" widened by {rules.tolerance.total_seconds():g} s on each side"
    verdicts.flag(
        outside,
        "outside_interval",
        lazy_messages(
            outside,
            lambda i: f"ts_utc {ts.iloc[i].isoformat()} is outside the data interval {bounds}",
            ts.index,
        ),
    )


@dataclass(frozen=True)
class Superseded:
    """Records that another delivery of their event_id supersedes (by position), and for each the
    file and row of the record kept instead."""

    rows: np.ndarray[Any, np.dtype[np.int64]]
    kept_file: np.ndarray[Any, np.dtype[np.object_]]
    kept_row: np.ndarray[Any, np.dtype[np.int64]]

    def messages(self, event_ids: Sequence[str]) -> list[str]:
        """The message of each superseded record, given its event_id."""
        return [
            f"event_id {excerpt(e)} is kept from {excerpt(f)} row {r}"
            for e, f, r in zip(event_ids, self.kept_file, self.kept_row, strict=True)
        ]


def superseded(event_ids: Any, source_files: Any, row_numbers: Any) -> Superseded:
    """Among records with the same event_id, the one from the last source file in code-point order,
    and in it the highest row number, is kept: the latest delivery wins. The others are superseded.
    Takes the three columns of the records (NumPy or Arrow arrays of one length) and works in Arrow,
    sorting only the records whose id occurs more than once."""
    ids = _arrow(event_ids, pa.large_string())
    counts = pc.value_counts(ids)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    shared = np.flatnonzero(np.asarray(pc.is_in(ids, value_set=repeated), dtype=bool))
    at = pa.array(shared)
    keys = pa.table(
        {
            "event_id": ids.take(at),
            "source_file": _arrow(source_files, pa.large_string()).take(at),
            "row_number": _arrow(row_numbers, pa.int64()).take(at),
        }
    )
    order = np.asarray(pc.sort_indices(keys, [(c, "ascending") for c in keys.column_names]), np.int64)
    ordered = keys.take(pa.array(order))
    last = np.ones(len(order), dtype=bool)  # the last record of its id, in sorted order
    if len(order) > 1:
        sorted_ids = ordered["event_id"]
        last[:-1] = np.asarray(pc.not_equal(sorted_ids[:-1], sorted_ids[1:]), dtype=bool)
    group = np.cumsum(last) - last  # the number of each record's id among the sorted ids
    winner = np.flatnonzero(last)[group]
    losing = np.flatnonzero(~last)
    rows = shared[order[losing]]
    by_position = np.argsort(rows, kind="stable")
    kept = pa.array(winner[losing][by_position])
    return Superseded(
        rows=rows[by_position],
        kept_file=np.asarray(ordered["source_file"].take(kept).to_pylist(), dtype=object),
        kept_row=np.asarray(ordered["row_number"].take(kept), dtype=np.int64),
    )


def _arrow(values: Any, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values.cast(kind)
    return pa.array(np.asarray(values, dtype=np.int64 if kind == pa.int64() else object), kind)


def drop_superseded(frame: pd.DataFrame, ids: pd.Series, verdicts: Verdicts, rule: str = "") -> None:
    """Among accepted records with the same event_id, keep the latest delivery (:func:`superseded`);
    the others are flagged ``duplicate``, their message followed by ``rule`` when given."""
    candidates = np.flatnonzero(verdicts.open)
    found = superseded(
        ids.iloc[candidates].to_numpy(dtype=object),
        frame["source_file"].iloc[candidates].astype(str).to_numpy(dtype=object),
        frame["row_number"].iloc[candidates].to_numpy(dtype=np.int64),
    )
    if not len(found.rows):
        return
    rows = candidates[found.rows]
    messages = pd.Series(None, index=frame.index, dtype=object)
    messages.iloc[rows] = [f"{m}{rule}" for m in found.messages(ids.iloc[rows].tolist())]
    mask = np.zeros(len(frame), dtype=bool)
    mask[rows] = True
    verdicts.flag(mask, DUPLICATE, messages)


def duplicates_rejected(events: pd.DataFrame, found: Superseded) -> pd.DataFrame:
    """The :data:`REJECTED` records of superseded ``events`` (accepted events with provenance and,
    where the source gave them, their raw bytes), in the order ``found`` lists them."""
    frame = _complete(events)
    return pd.DataFrame(
        {
            "source_file": pd.Series([printable(str(s)) for s in frame["source_file"]], dtype="string"),
            "row_number": frame["row_number"].to_numpy(dtype=np.int64),
            "event_id": pd.Series(frame["event_id"].to_numpy(dtype=object), dtype="string"),
            "reason": pd.Series([DUPLICATE] * len(frame), dtype="string"),
            "message": pd.Series(
                [printable(m) for m in found.messages(frame["event_id"].tolist())], dtype="string"
            ),
            "raw": pd.Series(raw_bytes(frame, np.arange(len(frame))), dtype=object),
        },
        columns=list(REJECTED.names),
    )


def recount_superseded(events: pd.DataFrame) -> Counts:
    """What changes in the counts of records checked chunk by chunk (without deduplication) when
    ``events``, accepted in their chunk, turn out superseded: they move from accepted to
    deduplicated, and the imputed counts lose their missing features."""
    dropped = len(events)
    imputed = {f: -int(events[f].isna().sum()) for f in FEATURES}
    return Counts(extracted=0, accepted=-dropped, rejected=0, deduplicated=dropped, imputed=imputed)


def has_duplicates(ids: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any value occurs twice: sorted in Arrow, then neighbours compared; about three times
    faster than pandas' ``duplicated`` on a million strings."""
    if len(ids) < 2:
        return False
    ordered = ids.take(pc.sort_indices(ids))
    return bool(pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py())


def _extra_fields(frame: pd.DataFrame) -> Counter[str]:
    """How many records carried each unknown field."""
    per_record = frame["extra_fields"].dropna().value_counts()
    seen: Counter[str] = Counter()
    for names, records in per_record.items():
        for name in json.loads(str(names)):
            seen[str(name)] += int(records)
    return seen


def raw_bytes(
    frame: pd.DataFrame, rows: np.ndarray[Any, Any], names: tuple[str, ...] = EVENT.names
) -> list[bytes]:
    """The raw bytes of ``rows``; records without them (the simulator's) as JSON of their fields
    ``names`` (the event's, or a label's)."""
    out = []
    picked = frame["raw"].iloc[np.asarray(rows, dtype=np.int64)].to_numpy(dtype=object)  # one take
    for i, raw in zip(rows, picked, strict=True):
        if isinstance(raw, bytes | bytearray | memoryview):
            out.append(bytes(raw))
            continue
        fields = {c: frame[c].iloc[i] for c in names}
        text = json.dumps({k: None if pd.isna(v) else str(v) for k, v in fields.items()}, ensure_ascii=False)
        out.append(text.encode("utf-8", "surrogatepass"))
    return out


def apply(
    records: pd.DataFrame, rules: Rules, *, provenance: bool = False, deduplicate: bool = True
) -> Checked:
    """Check every record against the contract; see :data:`REASONS` for the rules and their order.

    With ``provenance``, the valid events keep their ``source_file``, ``row_number`` and ``raw``; without
    ``deduplicate``, duplicates stay among them. ``etlml.steps.extract`` checks a large interval
    chunk by chunk that way, then finds in each shard in which an id occurs twice the events that
    :func:`superseded` drops, and quarantines them with :func:`duplicates_rejected`.
    """
    frame = _complete(records)
    verdicts = Verdicts(len(frame))
    flag_reader_problems(frame, verdicts)
    ids = check_ids(frame, verdicts)
    well_formed_id = verdicts.open.copy()
    ts = _check_timestamps(frame, verdicts)
    values = _check_numbers(frame, verdicts)
    _check_ranges(frame, values, rules, verdicts)
    _check_time_window(ts, rules, verdicts)
    if deduplicate:
        drop_superseded(frame, ids, verdicts)
    valid = _valid(frame, verdicts.open, ids, ts, values, provenance=provenance)
    rejected = rejected_records(frame, verdicts, ids, well_formed_id)
    extra = _extra_fields(frame)
    return Checked(valid, rejected, _count(frame, valid, rejected, extra), extra)


def flag_reader_problems(frame: pd.DataFrame, verdicts: Verdicts) -> None:
    """Records the source itself could not read keep the reason it gave them."""
    problem = frame["problem"].astype(object)
    flagged = problem.notna().to_numpy(dtype=bool)
    if not flagged.any():
        return
    unknown = set(problem[flagged]) - READER_REASONS
    if unknown:
        raise ContractError(f"a source reported unknown reasons {sorted(unknown)}")
    for code in problem[flagged].unique():
        details = frame["problem_detail"].astype(object).where(frame["problem_detail"].notna(), code)
        verdicts.flag(flagged & (problem == code).to_numpy(dtype=bool), str(code), details)


def _valid(
    frame: pd.DataFrame,
    accepted: Mask,
    ids: pd.Series,
    ts: pd.Series,
    values: dict[str, np.ndarray[Any, Any]],
    *,
    provenance: bool,
) -> pd.DataFrame:
    valid = pd.DataFrame(
        {
            "event_id": ids[accepted].astype("string").reset_index(drop=True),
            "ts_utc": ts[accepted].reset_index(drop=True),
            **{f: values[f][accepted] for f in FEATURES},
        }
    )
    if provenance:
        valid["source_file"] = frame["source_file"][accepted].astype("string").reset_index(drop=True)
        valid["row_number"] = frame["row_number"][accepted].to_numpy(dtype=np.int64)
        raw = frame["raw"][accepted].reset_index(drop=True)
        valid["raw"] = raw if isinstance(raw.dtype, pd.ArrowDtype) else raw.to_numpy(dtype=object)
    return valid


def rejected_records(
    frame: pd.DataFrame,
    verdicts: Verdicts,
    ids: pd.Series,
    well_formed_id: Mask,
    names: tuple[str, ...] = EVENT.names,
) -> pd.DataFrame:
    """The records ``verdicts`` refused, as :data:`etlml.records.REJECTED` rows in file and row order
    (the id only where it was well formed, raw bytes rendered from the fields ``names`` where a
    record has none); shared by the events' and the labels' contracts."""
    rows = np.flatnonzero(~verdicts.open)
    rejected = pd.DataFrame(
        {
            "source_file": pd.Series(
                [printable(str(s)) for s in frame["source_file"].iloc[rows]], dtype="string"
            ),
            "row_number": frame["row_number"].iloc[rows].to_numpy(dtype=np.int64),
            "event_id": pd.Series(ids.iloc[rows].to_numpy(dtype=object), dtype="string").where(
                well_formed_id[rows]
            ),
            "reason": pd.Series(verdicts.reason[rows], dtype="string"),
            "message": pd.Series([printable(str(m)) for m in verdicts.message[rows]], dtype="string"),
            "raw": pd.Series(raw_bytes(frame, rows, names), dtype=object),
        },
        columns=list(REJECTED.names),
    )
    return rejected.sort_values(["source_file", "row_number"], kind="stable").reset_index(drop=True)


def _count(frame: pd.DataFrame, valid: pd.DataFrame, rejected: pd.DataFrame, extra: Counter[str]) -> Counts:
    reasons = rejected["reason"].value_counts()
    deduplicated = int(reasons.get(DUPLICATE, 0))
    by_reason = {
        str(code): int(n)
        for code, n in sorted(reasons.items(), key=lambda item: (-int(item[1]), str(item[0])))
        if code != DUPLICATE
    }
    counts = Counts(
        extracted=len(frame),
        accepted=len(valid),
        rejected=len(rejected) - deduplicated,
        deduplicated=deduplicated,
        by_reason=by_reason,
        extra_fields=_top(extra),
        extra_field_names=len(extra),
        imputed={f: int(n) for f in FEATURES if (n := int(valid[f].isna().sum()))},
    )
    if not counts.balanced:
        raise ContractError(f"records do not add up: {counts}")
    return counts
