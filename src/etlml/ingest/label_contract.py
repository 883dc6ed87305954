"""The data contract of labels (ground truth): pure, vectorized checks, no I/O, no clock.

:func:`apply` takes the records a label source read (:data:`etlml.records.LABEL_RECORD`) and splits
them into the labels that satisfy the contract (:data:`etlml.records.LABEL`, with provenance and raw
bytes) and the rejected records (:data:`etlml.records.REJECTED`), each with the first reason of
:data:`REASONS` it fails. It reuses the event contract's machinery (:mod:`etlml.ingest.contract`): the
same id rules, timestamp and number parsing, reader reasons and "latest delivery wins" among records
of one run. Whether a label's event exists is not the contract's to say: the warehouse tells, when the
labels are stored (``unknown_event``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from etlml import DEFAULT_MAX_ABS_VALUE
from etlml.ingest import contract
from etlml.ingest.contract import Counts, excerpt, printable
from etlml.records import DUPLICATE, LABEL, PROVENANCE

UNKNOWN_EVENT = "unknown_event"

REASONS: dict[str, str] = {
    **{
        code: contract.REASONS[code]
        for code in sorted(contract.READER_REASONS, key=list(contract.REASONS).index)
    },
    "missing_event_id": contract.REASONS["missing_event_id"],
    "invalid_event_id": contract.REASONS["invalid_event_id"],
    "invalid_number": "y_true absent, or not a finite number",
    "out_of_range": "y_true a finite number of magnitude above ETLML_MAX_ABS_VALUE (default 1e15)",
    "invalid_timestamp": "observed_at absent, not ISO-8601 with a UTC offset, or not a real date and time",
    "future_timestamp": "observed_at more than the allowed skew (ETLML_MAX_FUTURE_SKEW_SECONDS) after both "
    "the moment the labels were read and the end of the run's interval",
    "duplicate": "another record of the run has the same event_id and was kept instead: the last delivery "
    "in read order (files in code-point order of their names, rows in file order) wins "
    "(counted as deduplicated, not as rejected)",
    UNKNOWN_EVENT: "no event with this id is stored in processed_data within ETLML_LABEL_WINDOW_DAYS "
    "before the run's interval (found when the labels are stored; rerun the label interval once the "
    "event is loaded)",
}
"""Reason codes of ``rejected_labels``, in the order the rules are checked."""


@dataclass(frozen=True)
class Rules:
    """What the checks depend on besides the records: the run's interval end and its clock.

    The clock only bounds ``observed_at`` from above (a producer's clock ahead of ours); a label may
    have been observed any time before, in any interval."""

    interval_end: datetime
    now: datetime
    max_future_skew: timedelta
    max_abs_value: float = DEFAULT_MAX_ABS_VALUE

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.interval_end.tzinfo is None:
            raise ValueError("label Rules need timezone-aware times")


@dataclass(frozen=True)
class Checked:
    """The outcome of :func:`apply`: accepted labels (``LABEL`` + provenance + ``raw``), rejected
    records (``REJECTED``), and the counts (``accepted``: labels that passed the contract)."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    counts: Counts


def _complete(records: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in PROVENANCE.names if c not in records]
    if missing:
        raise contract.ContractError(f"label records need provenance columns {missing}")
    frame = records.reset_index(drop=True)
    for name in (*LABEL.names, "raw", "problem", "problem_detail", "extra_fields"):
        if name not in frame:
            frame[name] = pd.Series(None, index=frame.index, dtype=object)
    return frame


def _check_label(
    frame: pd.DataFrame, rules: Rules, verdicts: contract.Verdicts
) -> np.ndarray[Any, np.dtype[np.float64]]:
    values, invalid = contract.parse_numbers(frame["y_true"])
    missing = np.isnan(values) & ~invalid
    bad = invalid | missing
    raw = frame["y_true"]

    def why(i: int) -> str:
        return "y_true is missing" if missing[i] else f"y_true is not a finite number: {excerpt(raw.iloc[i])}"

    verdicts.flag(bad, "invalid_number", contract.lazy_messages(bad, why, frame.index))
    beyond = contract.out_of_range(values, rules.max_abs_value)
    verdicts.flag(
        beyond,
        "out_of_range",
        contract.lazy_messages(
            beyond, lambda i: contract.bound_message("y_true", raw.iloc[i], rules.max_abs_value), frame.index
        ),
    )
    return values


def _check_observed(frame: pd.DataFrame, rules: Rules, verdicts: contract.Verdicts) -> pd.Series:
    parsed, given = contract.parse_timestamps(frame["observed_at"])
    bad = parsed.isna().to_numpy(dtype=bool)
    raw = frame["observed_at"]

    def why(i: int) -> str:
        if not given[i]:
            return "observed_at is missing"
        return f"observed_at is not an ISO-8601 date and time with a UTC offset: {excerpt(raw.iloc[i])}"

    verdicts.flag(bad, "invalid_timestamp", contract.lazy_messages(bad, why, frame.index))
    horizon = pd.Timestamp(max(rules.now, rules.interval_end) + rules.max_future_skew).tz_convert("UTC")
    future = (parsed > horizon).fillna(False).to_numpy(dtype=bool)
    skew = int(rules.max_future_skew.total_seconds())
    verdicts.flag(
        future,
        "future_timestamp",
        contract.lazy_messages(
            future,
            lambda i: f"observed_at {parsed.iloc[i].isoformat()} is more than {skew} s in the future",
            frame.index,
        ),
    )
    return parsed


def apply(records: pd.DataFrame, rules: Rules) -> Checked:
    """Check every label record against the contract (:data:`REASONS`, in order, first failure wins)."""
    frame = _complete(records)
    verdicts = contract.Verdicts(len(frame))
    contract.flag_reader_problems(frame, verdicts)
    ids = contract.check_ids(frame, verdicts)
    well_formed_id = verdicts.open.copy()
    y_true = _check_label(frame, rules, verdicts)
    observed = _check_observed(frame, rules, verdicts)
    contract.drop_superseded(frame, ids, verdicts, ": the last delivery in read order wins")
    accepted = verdicts.open
    valid = pd.DataFrame(
        {
            "event_id": ids[accepted].astype("string").reset_index(drop=True),
            "y_true": y_true[accepted],
            "observed_at": observed[accepted].reset_index(drop=True),
            "source_file": frame["source_file"][accepted].astype("string").reset_index(drop=True),
            "row_number": frame["row_number"][accepted].to_numpy(dtype=np.int64),
            "raw": contract.raw_bytes(frame, np.flatnonzero(accepted), LABEL.names),
        }
    )
    rejected = contract.rejected_records(frame, verdicts, ids, well_formed_id, LABEL.names)
    return Checked(valid, rejected, _count(frame, valid, rejected))


def _count(frame: pd.DataFrame, valid: pd.DataFrame, rejected: pd.DataFrame) -> Counts:
    reasons = Counter(str(r) for r in rejected["reason"])
    deduplicated = reasons.pop(DUPLICATE, 0)
    extra: Counter[str] = Counter()
    for names, n in frame["extra_fields"].dropna().value_counts().items():
        for name in json.loads(str(names)):
            extra[str(name)] += int(n)
    counts = Counts(
        extracted=len(frame),
        accepted=len(valid),
        rejected=len(rejected) - deduplicated,
        deduplicated=deduplicated,
        by_reason={k: n for k, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))},
        extra_fields={
            printable(k)[: contract.EXCERPT_CHARS]: n for k, n in extra.most_common(contract.TOP_EXTRA_FIELDS)
        },
        extra_field_names=len(extra),
    )
    if not counts.balanced:
        raise contract.ContractError(f"label records do not add up: {counts}")
    return counts


def with_unknown(counts: Counts, unknown: int) -> Counts:
    """``counts`` after the warehouse found ``unknown`` accepted labels without a stored event: they
    move from accepted to rejected (reason ``unknown_event``)."""
    if not unknown:
        return counts
    by_reason = Counter(counts.by_reason)
    by_reason[UNKNOWN_EVENT] += unknown
    return Counts(
        extracted=counts.extracted,
        accepted=counts.accepted - unknown,
        rejected=counts.rejected + unknown,
        deduplicated=counts.deduplicated,
        by_reason={k: n for k, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))},
        extra_fields=counts.extra_fields,
        extra_field_names=counts.extra_field_names,
    )
