"""The one description of every record layout: column names, pandas dtypes and PostgreSQL types.

Sources, the data contract, the Parquet files between steps and the warehouse's binary COPY all take
their columns from here, so a column is added or retyped in one place. The tables themselves are
defined by the migrations (``etlml/warehouse/migrations``), whose column types these follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from etlml import FEATURES

DUPLICATE = "duplicate"
"""The ``reason`` of a rejected record that was dropped as a duplicate (counted as deduplicated,
not as rejected)."""
REDELIVERED = "redelivered"
"""The ``reason`` of a record whose event id another interval already holds: the first stored
delivery wins, and this one is counted as deduplicated."""
DEDUPLICATED = (DUPLICATE, REDELIVERED)
"""The reasons counted as deduplicated rather than rejected."""


@dataclass(frozen=True)
class Column:
    """One column: its name, the pandas dtype frames hold it in, its PostgreSQL type for binary COPY
    (``None``: never COPYed), and its Arrow type where an empty object column cannot tell (bytes)."""

    name: str
    dtype: Any
    pg_type: str | None = None
    arrow_type: str | None = None


@dataclass(frozen=True)
class Layout:
    """An ordered set of columns."""

    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def __add__(self, other: Layout) -> Layout:
        return Layout(self.columns + other.columns)

    def dtypes(self) -> dict[str, Any]:
        return {c.name: c.dtype for c in self.columns}

    def empty(self) -> pd.DataFrame:
        """Zero rows with these columns and dtypes."""
        return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in self.columns})

    def copy_columns(self) -> tuple[tuple[str, str], ...]:
        """``(name, PostgreSQL type)`` of every column, as the binary COPY encoder takes them."""
        missing = [c.name for c in self.columns if c.pg_type is None]
        if missing:
            raise ValueError(f"columns {missing} have no PostgreSQL type")
        return tuple((c.name, str(c.pg_type)) for c in self.columns)

    def arrow_types(self) -> dict[str, str]:
        """Column -> Arrow type name, for columns whose type an empty frame cannot give."""
        return {c.name: c.arrow_type for c in self.columns if c.arrow_type is not None}


def _text(name: str) -> Column:
    return Column(name, "string", "text")


def _float(name: str) -> Column:
    return Column(name, np.float64, "float8")


def _timestamp(name: str) -> Column:
    return Column(name, "datetime64[us, UTC]", "timestamptz")


EVENT = Layout((_text("event_id"), _timestamp("ts_utc"), *map(_float, FEATURES)))
"""An event that satisfies the data contract: string id, UTC microsecond timestamp, float features
(NaN = missing)."""

PROVENANCE = Layout((_text("source_file"), Column("row_number", np.int64, "int8")))
"""Where a record came from: its file (relative to the landing root) and row, unique per record."""

RAW = Layout((Column("raw", object, "bytea", "large_binary"),))
"""A record's bytes as found (``None`` where a source has none, as the simulator)."""

LABEL = Layout((_text("event_id"), _float("y_true"), _timestamp("observed_at")))
"""A label that satisfies the labels' contract: the event's id, its true value (finite), and when it
was observed (UTC microseconds)."""


def record_layout(fields: Layout) -> Layout:
    """What a source reads of records with ``fields``, one row per record, before a contract checks
    them (:data:`RECORD` for events, :data:`LABEL_RECORD` for labels)."""
    return PROVENANCE + Layout(
        (
            *RAW.columns,
            *(Column(name, "string") for name in fields.names),
            Column("problem", "string"),
            Column("problem_detail", "string"),
            Column("extra_fields", "string"),
        )
    )


RECORD = record_layout(EVENT)
"""What a source reads, one row per record, before the contract checks it: provenance; ``raw``, the
record's bytes as found (or missing: the contract then renders its fields as JSON); the :data:`EVENT`
fields as text (or already typed: the simulator's); ``problem`` and ``problem_detail``, a reason code
and message when the source itself could not read the record; ``extra_fields``, a JSON list of the
record's fields the contract does not know. Only the provenance and the event fields are required."""

LABEL_RECORD = record_layout(LABEL)
"""What a label source reads: :data:`RECORD` with the :data:`LABEL` fields instead of the event's."""

REJECTED = Layout(
    (
        *PROVENANCE.columns,
        _text("event_id"),
        _text("reason"),
        _text("message"),
        *RAW.columns,
    )
)
"""A quarantined record (``rejected_events``): provenance, the id when it was well-formed, the first
reason it fails, a message, and its raw bytes."""

PROCESSED = EVENT + Layout(
    tuple(column for f in FEATURES for column in (_float(f"{f}_z"), Column(f"{f}_imputed", np.bool_, "bool")))
)
"""A cleaned, imputed and z-scored event (``processed_data`` without the run's columns)."""

PREDICTION = Layout((_text("event_id"), _timestamp("ts_utc"), _float("y_hat")))
"""One model version's score of one event (``predictions`` without the run's columns)."""

FILES = Layout((_text("source_file"), Column("size", np.int64, "int8"), _text("entry")))
"""The landing files a run read, with their sizes as stored (-1: a symbolic link, never read) and
their ledger entries as JSON (:class:`etlml.ingest.ledger.FileEntry`: size, checksum or ETag)."""

PROCESSED_RUN = Layout((_text("normalized_with"), _timestamp("interval_start"), _timestamp("interval_end")))
"""The columns of ``processed_data`` a run sets on every row it loads."""

PREDICTION_INTERVAL = Layout((_timestamp("interval_start"),))
"""The interval of the event a prediction scores (its ``processed_data`` row's), which ``predictions``
is partitioned by: a run sets it on every row; a rescore reads it with the events."""

PREDICTION_RUN = Layout((_text("model_version"), _text("written_by_run")))
"""The columns of ``predictions`` a run sets on every row it stores."""
