"""dag.test() over a Redis stream on the real local Redis: entries added with explicit ids in the
past target an interval; a rerun changes no byte; malformed entries are quarantined with their entry
id; an open window is waited for (deferred) before it is read; a trimmed or replaced range is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from etlml import cli
from etlml.ingest.stream import to_ms
from etlml.ingest.stream_entries import entry_id, row_number
from tests.dags.test_bad_config import task_states
from tests.dags.test_dag_runs import FULL_DIGEST, PIPELINE, PIPELINE_PARAMS, digests, xcom_values
from tests.streams import REDIS_URL, add, client, event, stream_key

pytestmark = [pytest.mark.airflow, pytest.mark.db]

# An interval of its own (see test_landing_runs): dag.test(LOGICAL) runs [START, LOGICAL).
LOGICAL = datetime(2026, 11, 24, 9, 10, tzinfo=UTC)
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
EVENTS = 200
REJECTED_DIGEST = (
    "SELECT md5(string_agg(t::text, '|' ORDER BY source_file, row_number)) FROM rejected_events t"
)


@pytest.fixture
def r() -> Any:
    return client()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with stream_key("dag") as k:
        monkeypatch.setenv("ETLML_SOURCE", "redis_stream")
        monkeypatch.setenv("AIRFLOW_CONN_EVENTS", REDIS_URL)
        monkeypatch.setenv("ETLML_STREAM_KEY", k)
        monkeypatch.setenv("ETLML_STREAM_GRACE_SECONDS", "30")
        yield k


@pytest.fixture
def wh(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("TRUNCATE rejected_events, run_audit")
    conn.commit()
    return conn


def run(dags: dict[str, Any], logical_date: datetime = LOGICAL) -> Any:
    return dags[PIPELINE].test(logical_date=logical_date, run_conf=dict(PIPELINE_PARAMS))


def fill(r: Any, key: str, start: datetime, events: int = EVENTS) -> list[str]:
    """``events`` good entries 2 s apart from ``start``, then three malformed ones."""
    ids = [
        add(
            r,
            key,
            start + timedelta(seconds=2 * i),
            event(f"s-{start:%H%M}-{i:04d}", start + timedelta(seconds=2 * i)),
        )
        for i in range(events)
    ]
    bad = start + timedelta(seconds=2 * events)
    ids.append(add(r, key, bad, {"ts_utc": bad.isoformat(), "f1": "1", "f2": "2", "f3": "3"}))
    ids.append(add(r, key, bad, event("bad-number", bad) | {"f3": "lots"}, 1))
    ids.append(add(r, key, bad, event("bad-bytes", bad) | {"f1": b"\xc3\x28"}, 2))
    return ids


def audit(conn: psycopg.Connection[Any], start: datetime = START) -> Any:
    return conn.execute(
        "SELECT source, extracted, loaded, rejected, gate, first_entry_id FROM run_audit "
        "WHERE dag_id = %s AND interval_start = %s",
        (PIPELINE, start),
    ).fetchone()


def test_a_stream_interval_is_loaded_scored_and_quarantined(
    dags: dict[str, Any], wh: psycopg.Connection[Any], r: Any, key: str
) -> None:
    ids = fill(r, key, START)
    add(r, key, LOGICAL, event("next-interval", LOGICAL))  # the next interval's: not read
    dag_run = run(dags)
    assert dag_run.state == "success", task_states(dag_run)
    processed = wh.execute(
        "SELECT count(*), count(*) FILTER (WHERE event_id LIKE 's-0900-%%') FROM processed_data "
        "WHERE interval_start = %s",
        (START,),
    ).fetchone()
    assert processed == (EVENTS, EVENTS)
    scored = wh.execute(
        "SELECT count(*) FROM predictions p JOIN processed_data d USING (event_id) "
        "WHERE d.interval_start = %s",
        (START,),
    ).fetchone()
    assert scored == (EVENTS,)
    rejected = wh.execute(
        "SELECT source_file, row_number, reason, raw FROM rejected_events WHERE interval_start = %s "
        "ORDER BY row_number",
        (START,),
    ).fetchall()
    assert [(f, entry_id(n), reason) for f, n, reason, _ in rejected] == [
        (key, ids[-3], "missing_event_id"),
        (key, ids[-2], "invalid_number"),
        (key, ids[-1], "invalid_encoding"),
    ]
    assert b'"entry_id": "' + ids[-1].encode() + b'"' in bytes(rejected[2][3])
    assert b"\xc3\x28" in bytes(rejected[2][3])
    assert audit(wh) == ("redis_stream", EVENTS + 3, EVENTS, 3, "passed", ids[0])
    assert xcom_values(PIPELINE, dag_run.run_id)["wait_for_window"]["deferred"] == 0  # long closed

    # a rerun reads the same entries and changes no byte
    before = digests(wh, FULL_DIGEST), digests(wh, {"rejected": REJECTED_DIGEST})
    assert run(dags).state == "success"
    assert (digests(wh, FULL_DIGEST), digests(wh, {"rejected": REJECTED_DIGEST})) == before
    assert audit(wh)[-1] == ids[0]


def test_a_trimmed_interval_is_refused_and_its_rows_stay(
    dags: dict[str, Any], wh: psycopg.Connection[Any], r: Any, key: str
) -> None:
    start, logical = START + timedelta(hours=1), LOGICAL + timedelta(hours=1)
    ids = fill(r, key, start, events=60)
    assert run(dags, logical).state == "success"
    stored = digests(wh, FULL_DIGEST)
    r.xtrim(key, minid=ids[5], approximate=False)
    dag_run = run(dags, logical)
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["wait_for_window"][0] == "success"
    assert states["extract"] == ("failed", 1)  # no retry: the entries will not come back
    assert digests(wh, FULL_DIGEST) == stored
    assert audit(wh, start)[1:3] == (63, 60)


def test_a_replaced_stream_is_refused_by_the_first_entry_run_audit_recorded(
    dags: dict[str, Any], wh: psycopg.Connection[Any], r: Any, key: str
) -> None:
    start, logical = START + timedelta(hours=2), LOGICAL + timedelta(hours=2)
    ids = fill(r, key, start, events=60)
    assert run(dags, logical).state == "success"
    # the stream is recreated without its first entries (a lost server restored from an old
    # backup, say): Redis itself shows no trimming, but the interval begins at another entry
    entries = r.xrange(key, ids[3], "+")
    r.delete(key)
    for ident, fields in entries:
        r.xadd(key, fields, id=ident)
    dag_run = run(dags, logical)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["load_processed"] == ("failed", 1)
    assert audit(wh, start)[-1] == ids[0]
    assert row_number(ids[0]) < row_number(ids[3])


def test_a_stream_restored_from_an_older_copy_is_refused_until_an_operator_accepts_it(
    dags: dict[str, Any], wh: psycopg.Connection[Any], r: Any, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start, logical = START + timedelta(hours=4), LOGICAL + timedelta(hours=4)
    ids = fill(r, key, start, events=250)  # and 3 malformed entries: 253
    assert run(dags, logical).state == "success"
    stored = digests(wh, FULL_DIGEST), digests(wh, {"rejected": REJECTED_DIGEST})
    # restored from a copy taken early in the interval: the same first entries, same ids, no later
    # ones; Redis's own counters show nothing removed
    kept = r.xrange(key, "-", "+", count=120)
    r.delete(key)
    for ident, fields in kept:
        r.xadd(key, fields, id=ident)
    dag_run = run(dags, logical)
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["extract"][0] == "success"
    assert states["load_processed"] == ("failed", 1)  # no retry: the entries will not come back
    assert (digests(wh, FULL_DIGEST), digests(wh, {"rejected": REJECTED_DIGEST})) == stored
    refused, ledger = wh.execute(
        "SELECT smaller_source_refused, ledger FROM run_audit WHERE dag_id = %s AND interval_start = %s",
        (PIPELINE, start),
    ).fetchone()
    assert ledger["stream"] == {
        "key": key,
        "first_entry_id": ids[0],
        "last_entry_id": ids[-1],
        "entries": 253,
    }
    assert any("120 records" in m and "253" in m for m in refused["missing"])
    assert any(ids[-1] in m for m in refused["missing"])

    # the operator means it: the rerun loads what the stream holds now, and says who asked
    dag_run = dags[PIPELINE].test(
        logical_date=logical, run_conf={**PIPELINE_PARAMS, "accept_smaller_source": True}
    )
    assert dag_run.state == "success", task_states(dag_run)
    assert wh.execute(
        "SELECT count(*) FROM processed_data WHERE interval_start = %s", (start,)
    ).fetchone() == (120,)
    assert wh.execute("SELECT count(*) FROM predictions WHERE interval_start = %s", (start,)).fetchone() == (
        120,
    )
    accepted, refused, ledger = wh.execute(
        "SELECT smaller_source_accepted, smaller_source_refused, ledger FROM run_audit "
        "WHERE dag_id = %s AND interval_start = %s",
        (PIPELINE, start),
    ).fetchone()
    assert refused is None
    assert accepted["by"] == "dag_test" and accepted["run"].endswith(dag_run.run_id)
    assert ledger["records"] == 120 and ledger["stream"]["last_entry_id"] == ids[119]

    # growth stays a plain merge: entries that arrive late in the interval are loaded without asking;
    # `etlml runs changed` lists the interval until they are
    late = start + timedelta(minutes=9)
    add(r, key, late, event("late-entry", late))
    window = ["--from", start.isoformat(), "--to", logical.isoformat(), "--json"]
    capsys.readouterr()
    assert cli.main(["runs", "changed", *window]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["dag_id"], c["source"], c["entries"]) for c in listed] == [
        (PIPELINE, "redis_stream", {"read": 120, "now": 121})
    ]
    assert run(dags, logical).state == "success"
    capsys.readouterr()
    assert cli.main(["runs", "changed", *window]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert wh.execute(
        "SELECT count(*) FROM processed_data WHERE interval_start = %s", (start,)
    ).fetchone() == (121,)


def test_a_stream_key_that_does_not_exist_fails_extract_naming_it(
    dags: dict[str, Any], wh: psycopg.Connection[Any], r: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    logical = LOGICAL + timedelta(hours=5)
    monkeypatch.setenv("ETLML_STREAM_KEY", f"{key}-misspelt")
    dag_run = run(dags, logical)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["extract"] == ("failed", 1)  # no retry: the key will not appear by itself
    # an existing key without entries in the window is an empty interval, not an error
    monkeypatch.setenv("ETLML_STREAM_KEY", key)
    add(r, key, LOGICAL + timedelta(hours=6), event("later", LOGICAL + timedelta(hours=6)))
    dag_run = run(dags, logical)
    assert dag_run.state == "success", task_states(dag_run)
    assert audit(wh, START + timedelta(hours=5))[1:3] == (0, 0)


def test_an_open_window_is_waited_for_in_the_triggerer_then_read(
    dags: dict[str, Any], wh: psycopg.Connection[Any], r: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seconds, _ = r.time()
    now = datetime.fromtimestamp(int(seconds), UTC)
    end = now.replace(minute=now.minute - now.minute % 10, second=0)
    start = end - timedelta(minutes=10)
    # the interval closes 15 s from now by the server's clock: later than the run reaches its first task
    grace = (now - end).total_seconds() + 15
    closes = end + timedelta(seconds=grace)
    monkeypatch.setenv("ETLML_STREAM_GRACE_SECONDS", str(grace))
    add(r, key, start + timedelta(seconds=1), event("waited-for", start + timedelta(seconds=1)))
    dag_run = run(dags, end)
    assert dag_run.state == "success", task_states(dag_run)
    assert task_states(dag_run)["wait_for_window"] == ("success", 1)
    # resumed from the trigger, which saw the server's clock past the interval's end plus the grace
    seen = xcom_values(PIPELINE, dag_run.run_id)["wait_for_window"]
    assert seen["deferred"] == 1 and seen["server_ms"] >= to_ms(closes)
    # read only once closed: the audit was written after the server's clock passed end + grace
    checked = wh.execute("SELECT checked_at FROM run_audit WHERE interval_start = %s", (start,)).fetchone()
    assert checked is not None and checked[0] >= closes
    assert wh.execute(
        "SELECT interval_start FROM processed_data WHERE event_id = 'waited-for'"
    ).fetchone() == (start,)


def test_a_missing_stream_connection_fails_the_wait_once_saying_what_to_set(
    dags: dict[str, Any], wh: psycopg.Connection[Any], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_EVENTS")
    dag_run = run(dags, LOGICAL + timedelta(hours=3))
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["wait_for_window"] == ("failed", 1)  # a retry cannot define the connection
    assert states["extract"][0] == "upstream_failed"


def test_a_key_that_is_not_a_stream_fails_the_run_at_once_saying_so(
    dags: dict[str, Any], wh: psycopg.Connection[Any], r: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    r.set(f"{key}-text", "not a stream")
    try:
        monkeypatch.setenv("ETLML_STREAM_KEY", f"{key}-text")
        dag_run = run(dags, LOGICAL + timedelta(hours=7))
        assert dag_run.state == "failed"
        states = task_states(dag_run)
        assert states["wait_for_window"] == ("failed", 1)  # no retry: the key will not change by itself
        assert states["extract"][0] == "upstream_failed"
    finally:
        r.delete(f"{key}-text")
