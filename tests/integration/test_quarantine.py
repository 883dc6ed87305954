"""Quarantine writes into the real warehouse: verbatim, idempotent, the invariant enforced by PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etlml import quality, records
from etlml.ingest import contract, landing
from etlml.interval import Interval
from etlml.warehouse import writes
from tests.landing_files import HUGE_FIELD, INJECTION_ID

pytestmark = pytest.mark.db

INTERVAL = Interval(datetime(2026, 11, 25, 18, 10, tzinfo=UTC), datetime(2026, 11, 25, 18, 20, tzinfo=UTC))
RULES = contract.Rules(
    INTERVAL, now=datetime(2026, 11, 25, 18, 21, tzinfo=UTC), max_future_skew=timedelta(minutes=5)
)
TS = b"2026-11-25T18:15:00Z"
DIGEST = "SELECT md5(string_agg(t::text, '|' ORDER BY source_file, row_number)) FROM rejected_events t"


@pytest.fixture
def qconn(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("TRUNCATE rejected_events, run_audit")
    conn.commit()
    return conn


def rejected_of(files: dict[str, bytes]) -> pd.DataFrame:
    records = pd.concat(
        [landing.read_file(f"2026-11-25/1810/{n}", d) for n, d in files.items()], ignore_index=True
    )
    return contract.apply(records, RULES).rejected


NASTY = {
    "a.jsonl": b"\n".join(
        [
            b'{"event_id": "' + INJECTION_ID.encode() + b'", "ts_utc": "' + TS + b'", "f1": "x"}',
            b'{"event_id": "nul\x00inside"}',
            b'{"event_id": "bad-utf8 \xc3\x28"}',
            b'{"event_id": "' + b"z" * 300 + b'", "ts_utc": "' + TS + b'"}',
            b'{"event_id": "h", "ts_utc": "' + TS + b'", "f2": "' + HUGE_FIELD.encode() + b'"}',
        ]
    ),
    "b.parquet": b"\x00\x01 not parquet \x00",
    "c.csv": b'event_id,ts_utc,f1\n"x\x00y",2026-11-25T18:15:00Z,1\n"\'; DELETE FROM run_audit; --",nope,1\n',
}


def test_nasty_records_are_stored_verbatim_and_never_executed(qconn: psycopg.Connection[Any]) -> None:
    rejected = rejected_of(NASTY)
    result = writes.upsert_rejected(qconn, rejected, INTERVAL, "test/run")
    qconn.commit()
    assert (result.staged, result.inserted, result.updated, result.removed) == (8, 8, 0, 0)
    rows = qconn.execute(
        "SELECT source_file, row_number, reason, event_id, raw, message FROM rejected_events "
        "ORDER BY source_file, row_number"
    ).fetchall()
    stored = {
        (f, n): (reason, event_id, bytes(raw), message) for f, n, reason, event_id, raw, message in rows
    }
    a = "2026-11-25/1810/a.jsonl"
    lines = NASTY["a.jsonl"].split(b"\n")
    assert stored[(a, 1)][:3] == ("invalid_number", INJECTION_ID, lines[0])
    assert stored[(a, 2)][0] == "malformed_record" and stored[(a, 2)][2] == lines[1]  # a NUL byte, kept
    assert stored[(a, 3)][0] == "invalid_encoding" and stored[(a, 3)][2] == lines[2]  # invalid UTF-8, kept
    assert stored[(a, 4)][0] == "invalid_event_id" and stored[(a, 4)][1] is None
    assert stored[(a, 5)][0] == "invalid_number" and stored[(a, 5)][2] == lines[4]  # 2 MB, not cut
    assert "(2000000 characters)" in stored[(a, 5)][3]
    whole = stored[("2026-11-25/1810/b.parquet", 0)]
    assert whole[0] == "unparseable_file" and whole[2] == NASTY["b.parquet"]
    c = "2026-11-25/1810/c.csv"
    assert stored[(c, 2)][2] == b'"x\x00y",2026-11-25T18:15:00Z,1'
    assert stored[(c, 3)][1] == "'; DELETE FROM run_audit; --"
    # the SQL in the ids was data, never statements
    assert qconn.execute("SELECT to_regclass('processed_data') IS NOT NULL").fetchone() == (True,)
    lengths = qconn.execute("SELECT max(octet_length(raw)) FROM rejected_events").fetchone()
    assert lengths == (len(lines[4]),)


def test_rerun_is_idempotent_and_removes_what_is_no_longer_rejected(qconn: psycopg.Connection[Any]) -> None:
    rejected = rejected_of(NASTY)
    later = Interval(INTERVAL.end, INTERVAL.end + timedelta(minutes=10))
    writes.upsert_rejected(qconn, rejected.iloc[:2], later, "test/other-interval")
    writes.upsert_rejected(qconn, rejected, INTERVAL, "test/first")
    qconn.commit()
    before = qconn.execute(DIGEST).fetchone()
    again = writes.upsert_rejected(qconn, rejected, INTERVAL, "test/second")
    qconn.commit()
    assert (again.inserted, again.updated, again.removed, again.unchanged) == (0, 0, 0, 8)
    assert qconn.execute(DIGEST).fetchone() == before  # byte-identical, rejected_at and run included
    changed = rejected.copy()
    changed.loc[0, "message"] = "another message"
    fixed = changed.iloc[:3]  # the other files were fixed
    result = writes.upsert_rejected(qconn, fixed, INTERVAL, "test/third")
    qconn.commit()
    assert (result.inserted, result.updated, result.removed) == (0, 1, 5)
    runs = qconn.execute(
        "SELECT interval_start, written_by_run, count(*) FROM rejected_events GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    assert runs == [
        (INTERVAL.start, "test/first", 2),
        (INTERVAL.start, "test/third", 1),
        (later.start, "test/other-interval", 2),
    ]


def test_outcomes_and_audit_follow_the_invariant(qconn: psycopg.Connection[Any]) -> None:
    rejected = records.REJECTED.empty()
    for reason, n in (("invalid_number", 3), ("duplicate", 2)):
        part = pd.DataFrame(
            {
                "source_file": [f"{reason}.jsonl"] * n,
                "row_number": range(1, n + 1),
                "event_id": ["e"] * n,
                "reason": [reason] * n,
                "message": ["m"] * n,
                "raw": [b"{}"] * n,
            }
        )
        rejected = pd.concat([rejected, part], ignore_index=True)
    writes.upsert_rejected(qconn, rejected.astype({"row_number": "int64"}), INTERVAL, "test/run")
    assert writes.interval_outcomes(qconn, INTERVAL) == (0, 3, 2)
    audit = quality.Audit("landing", contract.Counts(5, 0, 3, 2), max_rejected_share=0.05)
    writes.store_audit(qconn, "dag", INTERVAL, "dag/run", audit, load_id=str(uuid.uuid4()))
    writes.store_audit(
        qconn, "dag", INTERVAL, "dag/run2", audit, load_id=str(uuid.uuid4())
    )  # upsert, one row
    qconn.commit()
    row = qconn.execute(
        "SELECT extracted, loaded, rejected, deduplicated, gate, written_by_run FROM run_audit"
    ).fetchall()
    assert row == [(5, 0, 3, 2, "failed", "dag/run2")]
    unbalanced = quality.Audit("landing", contract.Counts(6, 0, 3, 2), max_rejected_share=0.05)
    with pytest.raises(quality.InvariantError, match=r"extracted 6 != loaded 0 \+ rejected 3"):
        quality.check_balanced(unbalanced, INTERVAL)
    with pytest.raises(psycopg.errors.CheckViolation):
        writes.store_audit(qconn, "dag", INTERVAL, "dag/run3", unbalanced, load_id=str(uuid.uuid4()))
    qconn.rollback()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(
        st.one_of(st.none(), st.binary(max_size=40), st.just(b""), st.just(b"\x00" * 5)), max_size=20
    )
)
def test_bytea_copy_arrives_exactly(conn: psycopg.Connection[Any], values: list[bytes | None]) -> None:
    frame = pd.DataFrame({"b": pd.Series(values, dtype=object)})
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE tb (b bytea) ON COMMIT DROP")
        writes.copy_frames(cur, "tb", (("b", "bytea"),), [frame])
        got = [None if v is None else bytes(v) for (v,) in cur.execute("SELECT b FROM tb").fetchall()]
    conn.rollback()
    assert got == values


def _nested_scans_of(plan: dict[str, Any], table: str) -> list[str]:
    """The nested loops of a JSON plan that scan ``table`` whole once per outer row."""
    found = []
    inner = plan.get("Plans", [])[1:] if plan.get("Node Type") == "Nested Loop" else []
    if any(p.get("Node Type") == "Seq Scan" and p.get("Relation Name") == table for p in inner):
        found.append(plan.get("Join Type", ""))
    for child in plan.get("Plans", []):
        found += _nested_scans_of(child, table)
    return found


def _duplicates_of(interval: Interval, n: int) -> pd.DataFrame:
    """``n`` records of one file of ``interval`` quarantined as duplicates (:data:`records.REJECTED`)."""
    return pd.DataFrame(
        {
            "source_file": [f"{interval.start:%Y-%m-%d/%H%M}/export.csv"] * n,
            "row_number": range(1, n + 1),
            "event_id": [f"e{i}" for i in range(n)],
            "reason": ["duplicate"] * n,
            "message": ["kept from a later row"] * n,
            "raw": [f"e{i},x".encode() for i in range(n)],
        }
    ).astype(records.REJECTED.dtypes())


def test_stale_quarantine_is_found_by_key_whatever_the_statistics_say(qconn: psycopg.Connection[Any]) -> None:
    """The interval's partition analyzed while empty (a new day, a TRUNCATE) and many records
    rejected: the removal of the records the run no longer rejects looks each stored one up among
    the staged ones by its key, never by scanning them all once per stored record (10,000 rejected
    records took ten seconds that way, a million would take days)."""
    from etlml.warehouse.connection import query

    interval = Interval(datetime(2031, 3, 4, 12, 0, tzinfo=UTC), datetime(2031, 3, 4, 12, 10, tzinfo=UTC))
    writes.ensure_partitions(qconn, interval.start, interval.start)
    qconn.execute("ANALYZE rejected_events")
    rows = _duplicates_of(interval, 2_000)
    params = {"interval_start": interval.start, "interval_end": interval.end, "written_by_run": "r"}
    with qconn.transaction(force_rollback=True), qconn.cursor() as cur:
        cur.execute(query("stage_rejected"))
        writes.copy_frames(cur, "stage_rejected", writes.REJECTED_STAGE, [rows])
        cur.execute("ANALYZE stage_rejected")
        cur.execute(query("merge_rejected"), params)
        cur.execute(f"EXPLAIN (FORMAT JSON) {query('remove_stale_rejected')}", params)
        row = cur.fetchone()
    assert row is not None
    assert _nested_scans_of(row[0][0]["Plan"], "stage_rejected") == []


def _scans_per_row(plan: dict[str, Any], prefix: str) -> list[tuple[str, int]]:
    """The scans, in an analyzed JSON plan, of a relation whose name starts with ``prefix`` (a table
    or its partitions) that ran more than once: once per row of something else."""
    found = []
    if str(plan.get("Relation Name", "")).startswith(prefix) and plan.get("Actual Loops", 1) > 1:
        found.append((plan["Relation Name"], plan["Actual Loops"]))
    for child in plan.get("Plans", []):
        found += _scans_per_row(child, prefix)
    return found


@pytest.mark.parametrize("stored_before", [False, True])
def test_merging_the_quarantine_reads_the_stored_records_once(
    qconn: psycopg.Connection[Any], stored_before: bool
) -> None:
    """The interval's partition empty when the merge is planned (a new day, a TRUNCATE), or holding
    the interval's records (a rerun): telling inserted from updated records reads the stored ones
    once, never once per merged record (on an empty partition the planner scanned it whole per
    record, and the merge's own inserts made that quadratic: 1.3 s of a landing interval's
    load_processed for 10,000 rejected duplicates)."""
    from etlml.warehouse.connection import query

    interval = Interval(datetime(2031, 3, 5, 12, 0, tzinfo=UTC), datetime(2031, 3, 5, 12, 10, tzinfo=UTC))
    writes.ensure_partitions(qconn, interval.start, interval.start)
    n = 2_000
    rows = _duplicates_of(interval, n)
    if stored_before:
        writes.upsert_rejected(qconn, rows.iloc[: n // 2], interval, "r0")
    changed = rows.assign(message="kept from another row")
    params = {"interval_start": interval.start, "interval_end": interval.end, "written_by_run": "r"}
    with qconn.transaction(force_rollback=True), qconn.cursor() as cur:
        cur.execute(query("stage_rejected"))
        writes.copy_frames(cur, "stage_rejected", writes.REJECTED_STAGE, [changed])
        cur.execute("ANALYZE stage_rejected")
        cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query('merge_rejected')}", params)
        row = cur.fetchone()
    assert row is not None
    assert _scans_per_row(row[0][0]["Plan"], "rejected_events") == []
    result = writes.upsert_rejected(qconn, changed, interval, "r")
    assert (result.inserted, result.updated) == ((n // 2, n // 2) if stored_before else (n, 0))
