"""The data contract: one table row per rule and its reason code, precedence, deduplication, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etlml.ingest import contract
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval

INTERVAL = Interval(datetime(2026, 11, 25, 18, 0, tzinfo=UTC), datetime(2026, 11, 25, 18, 10, tzinfo=UTC))
NOW = datetime(2026, 11, 25, 18, 12, tzinfo=UTC)
RULES = contract.Rules(INTERVAL, now=NOW, max_future_skew=timedelta(minutes=5))
GOOD = {"event_id": "evt-1", "ts_utc": "2026-11-25T18:05:00Z", "f1": "1.5", "f2": "-2", "f3": "3e2"}


def records(*rows: dict[str, Any]) -> pd.DataFrame:
    """Records as a landing file gives them: every value as text, provenance added."""
    frame = pd.DataFrame([{**GOOD, **row} for row in rows], columns=list(GOOD)).astype("string")
    return frame.assign(source_file="f.jsonl", row_number=np.arange(1, len(frame) + 1))


def one(row: dict[str, Any], rules: contract.Rules = RULES) -> contract.Checked:
    return contract.apply(records(row), rules)


# One row per rule: the field values that break it and the reason code it gives.
RULE_TABLE: list[tuple[str, dict[str, Any], str]] = [
    ("id absent", {"event_id": None}, "missing_event_id"),
    ("id empty", {"event_id": ""}, "missing_event_id"),
    ("id blank", {"event_id": "  \t"}, "missing_event_id"),
    ("id of 129 characters", {"event_id": "x" * 129}, "invalid_event_id"),
    ("id with NUL", {"event_id": "a\x00b"}, "invalid_event_id"),
    ("id with newline", {"event_id": "a\nb"}, "invalid_event_id"),
    ("id with DEL", {"event_id": "a\x7f"}, "invalid_event_id"),
    ("id with C1 control", {"event_id": "a\x85"}, "invalid_event_id"),
    ("timestamp absent", {"ts_utc": None}, "invalid_timestamp"),
    ("timestamp garbage", {"ts_utc": "yesterday"}, "invalid_timestamp"),
    ("timestamp without offset", {"ts_utc": "2026-11-25T18:05:00"}, "invalid_timestamp"),
    ("timestamp date only", {"ts_utc": "2026-11-25"}, "invalid_timestamp"),
    ("timestamp impossible date", {"ts_utc": "2026-02-30T18:05:00Z"}, "invalid_timestamp"),
    ("timestamp impossible hour", {"ts_utc": "2026-11-25T25:05:00Z"}, "invalid_timestamp"),
    ("timestamp epoch number", {"ts_utc": "1795712700"}, "invalid_timestamp"),
    ("number garbage", {"f1": "ten"}, "invalid_number"),
    ("number NaN", {"f2": "NaN"}, "invalid_number"),
    ("number infinity", {"f3": "inf"}, "invalid_number"),
    ("number overflow", {"f3": "1e400"}, "invalid_number"),
    ("number hex", {"f1": "0x10"}, "invalid_number"),
    ("number boolean", {"f1": "true"}, "invalid_number"),
    ("number with comma", {"f1": "1,5"}, "invalid_number"),
    ("number huge but finite", {"f3": "1e300"}, "out_of_range"),
    ("number just past the bound", {"f1": "-1.0000000001e15"}, "out_of_range"),
    ("timestamp beyond the skew", {"ts_utc": "2026-11-25T18:17:01Z"}, "future_timestamp"),
    ("timestamp far future", {"ts_utc": "2099-01-01T00:00:00Z"}, "future_timestamp"),
    ("timestamp before interval", {"ts_utc": "2026-11-25T17:59:59.999999Z"}, "outside_interval"),
    ("timestamp at interval end", {"ts_utc": "2026-11-25T18:10:00Z"}, "outside_interval"),
    ("timestamp in skew but after interval", {"ts_utc": "2026-11-25T18:15:00Z"}, "outside_interval"),
]


@pytest.mark.parametrize(
    ("row", "reason"), [(r, code) for _, r, code in RULE_TABLE], ids=[c for c, _, _ in RULE_TABLE]
)
def test_each_rule_rejects_with_its_reason(row: dict[str, Any], reason: str) -> None:
    checked = one(row)
    assert checked.valid.empty
    assert checked.rejected["reason"].tolist() == [reason]
    assert checked.rejected["message"].iloc[0]
    assert (checked.counts.extracted, checked.counts.rejected) == (1, 1)
    assert checked.counts.by_reason == {reason: 1}


def test_every_reason_code_is_documented_and_tested() -> None:
    tested_here = {code for _, _, code in RULE_TABLE} | {contract.DUPLICATE}
    from_sources = set(contract.READER_REASONS) - {"invalid_event_id"}  # see tests/unit/test_landing.py
    assert tested_here | from_sources == set(contract.REASONS)


ACCEPTED_TABLE: list[tuple[str, dict[str, Any]]] = [
    ("all given", {}),
    ("offset +01:00", {"ts_utc": "2026-11-25T19:05:00+01:00"}),
    ("offset without colon", {"ts_utc": "2026-11-25T13:05:00-0500"}),
    ("space separator", {"ts_utc": "2026-11-25 18:05:00Z"}),
    ("nanoseconds", {"ts_utc": "2026-11-25T18:05:00.123456789Z"}),
    ("minutes only", {"ts_utc": "2026-11-25T18:05Z"}),
    ("interval start", {"ts_utc": "2026-11-25T18:00:00Z"}),
    ("number with spaces", {"f1": "  7 "}),
    ("number forms", {"f1": "+.5", "f2": "-3.", "f3": "1E-3"}),
    ("number on the bound", {"f1": "1e15", "f2": "-1e15"}),
    ("id of 128 characters", {"event_id": "é" * 128}),
    ("id that looks like SQL", {"event_id": "1'; DROP TABLE processed_data; --"}),
]


@pytest.mark.parametrize("row", [r for _, r in ACCEPTED_TABLE], ids=[c for c, _ in ACCEPTED_TABLE])
def test_valid_records_are_accepted(row: dict[str, Any]) -> None:
    checked = one(row)
    assert checked.rejected.empty
    assert len(checked.valid) == 1
    assert checked.valid["event_id"].iloc[0] == {**GOOD, **row}["event_id"]


def test_valid_frame_is_typed_and_exact() -> None:
    valid = one({"ts_utc": "2026-11-25T19:05:00.1234567+01:00", "f2": None, "f3": ""}).valid
    assert list(valid.columns) == ["event_id", "ts_utc", "f1", "f2", "f3"]
    assert str(valid["ts_utc"].dtype) == "datetime64[us, UTC]"
    # sub-microsecond digits are cut to PostgreSQL's precision
    assert valid["ts_utc"].iloc[0] == pd.Timestamp("2026-11-25T18:05:00.123456Z")
    assert valid["f1"].iloc[0] == 1.5
    assert np.isnan(valid["f2"].iloc[0]) and np.isnan(valid["f3"].iloc[0])  # missing: imputed later
    assert one({"f2": None, "f3": ""}).counts.imputed == {"f2": 1, "f3": 1}


def test_first_failing_rule_wins() -> None:
    checked = one({"event_id": "", "ts_utc": "bad", "f1": "bad"})
    assert checked.rejected["reason"].tolist() == ["missing_event_id"]
    checked = one({"ts_utc": "bad", "f1": "bad"})
    assert checked.rejected["reason"].tolist() == ["invalid_timestamp"]
    checked = one({"ts_utc": "2099-01-01T00:00:00Z", "f1": "bad"})
    assert checked.rejected["reason"].tolist() == ["invalid_number"]


def test_message_names_every_bad_field_and_stays_short() -> None:
    message = one({"f1": "x" * 10_000, "f3": "nan"}).rejected["message"].iloc[0]
    assert "f1 is not a finite number" in message and "f3 is not a finite number" in message
    assert "(10000 characters)" in message
    assert len(message) < 400


def test_skew_is_configurable() -> None:
    row = {"ts_utc": "2026-11-25T18:13:00Z"}  # NOW is 18:12
    strict = contract.Rules(INTERVAL, now=NOW, max_future_skew=timedelta(seconds=0))
    assert one(row, strict).rejected["reason"].tolist() == ["future_timestamp"]
    lenient = contract.Rules(INTERVAL, now=NOW, max_future_skew=timedelta(minutes=10))
    assert one(row, lenient).rejected["reason"].tolist() == ["outside_interval"]


def test_the_clock_never_decides_acceptance() -> None:
    """A run that starts before its interval ends (a manual run) accepts the same events as any rerun;
    for events after the interval, the clock only picks the reason."""
    inside, after = {"ts_utc": "2026-11-25T18:09:59Z"}, {"ts_utc": "2026-11-25T18:30:00Z"}
    for now in (INTERVAL.start - timedelta(days=1), NOW, NOW + timedelta(days=365)):
        rules = contract.Rules(INTERVAL, now=now, max_future_skew=timedelta(minutes=5))
        assert len(one(inside, rules).valid) == 1
    early = contract.Rules(INTERVAL, now=INTERVAL.start, max_future_skew=timedelta(minutes=5))
    assert one(after, early).rejected["reason"].tolist() == ["future_timestamp"]
    backfill = contract.Rules(INTERVAL, now=NOW + timedelta(days=1), max_future_skew=timedelta(minutes=5))
    assert one(after, backfill).rejected["reason"].tolist() == ["outside_interval"]


def test_duplicates_keep_the_last_file_then_the_highest_row() -> None:
    frame = pd.concat(
        [
            records({"f1": "1"}, {"f1": "2"}).assign(source_file="2026-11-25/1800/b.jsonl"),
            records({"f1": "3"}, {"f1": "4"}).assign(source_file="2026-11-25/1800/a.jsonl"),
            records({"event_id": "other"}).assign(source_file="2026-11-25/1800/a.jsonl"),
            records({"f1": "bad"}).assign(source_file="2026-11-25/1800/z.jsonl"),  # rejected: no contender
        ]
    )
    checked = contract.apply(frame.sample(frac=1, random_state=3), RULES)  # order of arrival is irrelevant
    kept = checked.valid.set_index("event_id")
    assert kept.loc["evt-1", "f1"] == 2.0  # b.jsonl row 2
    assert set(kept.index) == {"evt-1", "other"}
    dupes = checked.rejected[checked.rejected["reason"] == "duplicate"]
    assert sorted(zip(dupes["source_file"], dupes["row_number"], strict=True)) == [
        ("2026-11-25/1800/a.jsonl", 1),
        ("2026-11-25/1800/a.jsonl", 2),
        ("2026-11-25/1800/b.jsonl", 1),
    ]
    assert dupes["event_id"].tolist() == ["evt-1"] * 3
    assert "'2026-11-25/1800/b.jsonl' row 2" in dupes["message"].iloc[0]
    counts = checked.counts
    assert (counts.extracted, counts.accepted, counts.rejected, counts.deduplicated) == (6, 2, 1, 3)
    assert counts.by_reason == {"invalid_number": 1}


def test_reader_problems_pass_through_and_raw_is_kept() -> None:
    frame = records({}, {}).assign(
        problem=["malformed_record", None],
        problem_detail=["not valid JSON", None],
        raw=[b"{oops", b"{}"],
        event_id=["broken", "fine"],
    )
    checked = contract.apply(frame, RULES)
    assert checked.valid["event_id"].tolist() == ["fine"]
    rejected = checked.rejected.iloc[0]
    assert (rejected["reason"], rejected["message"], rejected["raw"]) == (
        "malformed_record",
        "not valid JSON",
        b"{oops",
    )
    assert pd.isna(rejected["event_id"])  # not vouched for: the record was never read


def test_unknown_reader_problem_is_a_bug() -> None:
    with pytest.raises(contract.ContractError, match="unknown reasons"):
        contract.apply(records({}).assign(problem="weird"), RULES)


def test_extra_fields_are_counted_not_loaded() -> None:
    frame = records({}, {"event_id": "evt-2"}, {"event_id": "evt-3"}).assign(
        extra_fields=['["color", "size"]', '["color"]', None]
    )
    checked = contract.apply(frame, RULES)
    assert len(checked.valid) == 3
    assert list(checked.valid.columns) == ["event_id", "ts_utc", "f1", "f2", "f3"]
    assert checked.counts.extra_fields == {"color": 2, "size": 1}
    assert checked.counts.extra_field_names == 2


def test_rejected_without_raw_bytes_are_rendered_as_json() -> None:
    events = SimulatedSource(1, 3).records(INTERVAL)
    events.loc[1, "f1"] = np.inf
    checked = contract.apply(events, RULES)
    assert checked.rejected["reason"].tolist() == ["invalid_number"]
    assert checked.rejected["source_file"].tolist() == ["simulator"]
    assert b'"f1": "inf"' in checked.rejected["raw"].iloc[0]


def test_simulated_events_pass_unchanged() -> None:
    events = SimulatedSource(5, 500).events(INTERVAL)
    checked = contract.apply(SimulatedSource(5, 500).records(INTERVAL), RULES)
    pd.testing.assert_frame_equal(checked.valid, events)
    assert checked.rejected.empty
    assert checked.counts.imputed == {"f2": int(events["f2"].isna().sum())}


def test_zero_records() -> None:
    checked = contract.apply(records().iloc[:0], RULES)
    assert checked.valid.empty and checked.rejected.empty
    assert str(checked.valid["ts_utc"].dtype) == "datetime64[us, UTC]"
    assert checked.counts == contract.Counts(0, 0, 0, 0)
    assert checked.counts.rejected_share == 0.0


def test_counts_travel_through_xcom() -> None:
    counts = one({"f1": "x"}).counts
    assert contract.Counts.from_xcom(counts.to_xcom()) == counts


text_values = st.one_of(
    st.none(), st.text(max_size=40), st.sampled_from(["", "1.5", "nan", "2026-11-25T18:05:00Z"])
)
row_strategy = st.fixed_dictionaries(
    {
        "event_id": st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["evt-1", "evt-2"])),
        "ts_utc": st.one_of(
            text_values,
            st.datetimes(
                min_value=datetime(2026, 11, 25, 17, 50),
                max_value=datetime(2026, 11, 25, 18, 20),
                timezones=st.just(UTC),
            ).map(lambda d: d.isoformat()),
        ),
        "f1": text_values,
        "f2": text_values,
        "f3": st.one_of(text_values, st.floats().map(str)),
    }
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row_strategy, max_size=12), data=st.data())
def test_a_records_verdict_does_not_depend_on_its_batch_mates_except_duplicates(
    rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    frame = records(*rows) if rows else records().iloc[:0]
    frame = frame.assign(
        event_id=[f"u{i}-{r['event_id']}" if r["event_id"] else r["event_id"] for i, r in enumerate(rows)]
    )
    together = contract.apply(frame, RULES)
    assert together.counts.balanced
    if not rows:
        return
    i = data.draw(st.integers(0, len(rows) - 1))
    alone = contract.apply(frame.iloc[[i]], RULES)
    mine = together.rejected[together.rejected["row_number"] == i + 1]
    assert alone.rejected["reason"].tolist() == mine["reason"].tolist()
    assert alone.rejected["message"].tolist() == mine["message"].tolist()


def test_the_magnitude_bound_is_the_rules_and_says_how_to_change_it() -> None:
    tight = contract.Rules(INTERVAL, now=NOW, max_future_skew=timedelta(minutes=5), max_abs_value=1000.0)
    checked = one({"f1": "1000", "f2": "1000.5"}, tight)
    assert checked.rejected["reason"].tolist() == ["out_of_range"]
    message = checked.rejected["message"].iloc[0]
    assert "f2" in message and "f1" not in message and "ETLML_MAX_ABS_VALUE" in message
    # numeric columns (Parquet) are bounded the same way
    frame = records({}).astype({"f3": "float64"}).assign(f3=[-1e300])
    assert contract.apply(frame, RULES).rejected["reason"].tolist() == ["out_of_range"]
