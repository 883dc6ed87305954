"""`etlml stream produce` and `etlml stream trim` against the real local Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from etlml import cli
from tests.streams import REDIS_URL, add, client, event, stream_key


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with stream_key("cli") as k:
        monkeypatch.setenv("AIRFLOW_CONN_EVENTS", REDIS_URL)
        monkeypatch.setenv("ETLML_STREAM_KEY", k)
        yield k


def etlml(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_produce_appends_simulated_events_by_the_servers_clock(
    capsys: pytest.CaptureFixture[str], key: str
) -> None:
    r: Any = client()
    code, out, _ = etlml(capsys, "stream", "produce", "--events", "120")
    assert code == 0
    result = json.loads(out)
    assert (result["stream"], result["events"]) == (key, 120)
    entries = r.xrange(key)
    assert len(entries) == 120
    assert (
        entries[0][0].decode() == result["first_entry_id"]
        and entries[-1][0].decode() == result["last_entry_id"]
    )
    fields = entries[0][1]
    assert {b"event_id", b"ts_utc", b"f1", b"f3"} <= set(fields)
    assert len({e[1][b"event_id"] for e in entries}) == 120
    # a second producer run gets ids of its own: nothing is a duplicate of the first
    etlml(capsys, "stream", "produce", "--events", "5", "--per-second", "1000")
    assert len({e[1][b"event_id"] for e in r.xrange(key)}) == 125


def _since(monkeypatch: pytest.MonkeyPatch, start: datetime) -> None:
    """The pipeline starts at ``start`` (ETLML_START_DATE): earlier entries are not its to load."""
    monkeypatch.setenv("ETLML_START_DATE", start.isoformat())


def _stored(conn: psycopg.Connection[Any], start: datetime, end: datetime, gate: str = "passed") -> None:
    """run_audit rows of 10_etl_ml_pipeline for every interval starting in [start, end)."""
    conn.execute(
        "INSERT INTO run_audit (dag_id, interval_start, interval_end, source, extracted, loaded, rejected, "
        "deduplicated, rejected_share, max_rejected_share, gate, by_reason, extra_fields, "
        "extra_field_names, imputed, written_by_run) "
        "SELECT '10_etl_ml_pipeline', g, g + interval '10 minutes', 'redis_stream', 0, 0, 0, 0, 0, 0.05, "
        "%s, '{}', '{}', 0, '{}', 'test' FROM generate_series(%s::timestamptz, %s, interval '10 minutes') g "
        "WHERE g < %s ON CONFLICT DO NOTHING",
        (gate, start, end, end),
    )
    conn.commit()


@pytest.fixture
def audits(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    conn.execute("DELETE FROM run_audit WHERE dag_id = '10_etl_ml_pipeline'")
    conn.commit()
    yield conn
    conn.execute("DELETE FROM run_audit WHERE dag_id = '10_etl_ml_pipeline'")
    conn.commit()


def _ten_minutes(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 10, second=0, microsecond=0)


def test_trim_removes_what_arrived_before_the_retention(
    capsys: pytest.CaptureFixture[str], key: str, audits: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r: Any = client()
    old = datetime.now(UTC) - timedelta(days=10)
    _since(monkeypatch, old + timedelta(days=1))  # the old entries are before the pipeline's start
    add(r, key, old - timedelta(hours=1), event("older", old))
    add(r, key, old, event("old", old))
    add(r, key, old + timedelta(days=5), event("recent", old + timedelta(days=5)))
    code, out, _ = etlml(capsys, "stream", "trim", "--keep-days", "7")
    assert code == 0 and json.loads(out)["removed"] == 1
    # the newest entry before the trim point stays: the proof that nothing after it was trimmed
    assert [e[1][b"event_id"] for e in r.xrange(key)] == [b"old", b"recent"]


def test_trim_never_passes_an_interval_the_pipeline_has_not_stored(
    capsys: pytest.CaptureFixture[str],
    key: str,
    audits: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r: Any = client()
    now = datetime.now(UTC)
    start = _ten_minutes(now - timedelta(days=10))
    _since(monkeypatch, start)
    # a backlog: the first two days since the start were stored, the scheduler was down after that
    _stored(audits, start, start + timedelta(days=2))
    stored_entry, backlog = start + timedelta(days=1), start + timedelta(days=2, minutes=5)
    add(r, key, start, event("first", start))
    add(r, key, stored_entry, event("stored", stored_entry))
    add(r, key, backlog, event("backlog", backlog))
    code, out, err = etlml(capsys, "stream", "trim", "--keep-days", "7")
    result = json.loads(out)
    assert code == 0 and result["removed"] == 1
    assert result["before"] == (start + timedelta(days=2)).isoformat()
    assert "no stored run that passed its quality gate" in result["kept"] and "--force" in err
    assert [e[1][b"event_id"] for e in r.xrange(key)] == [b"stored", b"backlog"]
    # an interval whose run failed its gate is not stored either
    _stored(audits, start + timedelta(days=2), start + timedelta(days=3), gate="failed")
    assert etlml(capsys, "stream", "trim", "--keep-days", "7")[0] == 0
    assert len(r.xrange(key)) == 2
    # by hand, on purpose (the newest entry before the point stays)
    code, out, _ = etlml(capsys, "stream", "trim", "--keep-days", "7", "--force")
    assert code == 0 and json.loads(out)["removed"] == 1
    assert [e[1][b"event_id"] for e in r.xrange(key)] == [b"backlog"]


def test_the_interval_a_trim_stops_at_can_still_be_read(
    capsys: pytest.CaptureFixture[str],
    key: str,
    audits: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keeping an unstored interval's entries is worth nothing if the stream then looks trimmed into
    it: the trim keeps the newest entry older than where it stops, so Redis still shows that nothing
    of the interval was removed."""
    from etlml.ingest.stream import RedisStreamSource
    from etlml.interval import Interval

    r: Any = client()
    start = _ten_minutes(datetime.now(UTC) - timedelta(days=10))
    _since(monkeypatch, start)
    _stored(audits, start, start + timedelta(days=2))
    backlog = start + timedelta(days=2)
    for n, at in enumerate(
        [start + timedelta(hours=1), start + timedelta(days=1), backlog + timedelta(minutes=5)]
    ):
        add(r, key, at, event(f"e-{n}", at))
    code, out, _ = etlml(capsys, "stream", "trim", "--keep-days", "7")
    assert code == 0 and json.loads(out)["before"] == backlog.isoformat()
    source = RedisStreamSource(r, key, timedelta(seconds=30))
    interval = Interval(backlog, backlog + timedelta(minutes=10))
    assert list(source.records(interval)["event_id"]) == ["e-2"]
    # the stored interval it cut into is refused, as any trimmed interval is
    assert source.info().missing_from(Interval(start, start + timedelta(minutes=10)))


def test_stream_errors_say_what_to_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_EVENTS", raising=False)
    code, _, err = etlml(capsys, "stream", "produce", "--events", "1")
    assert code == 2 and "AIRFLOW_CONN_EVENTS=redis://HOST:6379/0" in err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["stream", "produce", "--events", "0"])
    assert exit_.value.code == 2
    assert "must be more than 0" in capsys.readouterr().err


def test_housekeeping_trims_the_stream_to_the_storage_retention(
    key: str, monkeypatch: pytest.MonkeyPatch, audits: psycopg.Connection[Any]
) -> None:
    from etlml.steps.housekeeping import trim_stream

    r: Any = client()
    now = datetime.now(UTC)
    _since(monkeypatch, _ten_minutes(now - timedelta(days=9)))
    _stored(audits, _ten_minutes(now - timedelta(days=9)), now - timedelta(days=7))
    add(r, key, now - timedelta(days=9), event("older", now - timedelta(days=9)))
    add(r, key, now - timedelta(days=8), event("old", now - timedelta(days=8)))
    add(r, key, now - timedelta(days=6), event("kept", now - timedelta(days=6)))
    monkeypatch.setenv("ETLML_SOURCE", "simulator")
    assert trim_stream(now) is None  # no stream to trim
    assert len(r.xrange(key)) == 3
    monkeypatch.setenv("ETLML_SOURCE", "redis_stream")
    assert trim_stream(now) == 1
    assert [e[1][b"event_id"] for e in r.xrange(key)] == [b"old", b"kept"]


def test_housekeeping_keeps_what_no_run_has_read_whatever_the_retention(
    key: str, monkeypatch: pytest.MonkeyPatch, audits: psycopg.Connection[Any]
) -> None:
    from etlml.steps.housekeeping import trim_stream

    r: Any = client()
    monkeypatch.setenv("ETLML_SOURCE", "redis_stream")
    monkeypatch.setenv("ETLML_STORAGE_RETENTION_DAYS", "0")
    now = datetime.now(UTC)
    _since(monkeypatch, _ten_minutes(now) - timedelta(hours=1))
    _stored(audits, _ten_minutes(now) - timedelta(hours=1), _ten_minutes(now))  # every ended interval
    for n in range(50):  # entries of the interval still open: no run has read them
        add(r, key, _ten_minutes(now) + timedelta(milliseconds=n), event(f"open-{n}", now))
    assert trim_stream(now) == 0
    assert r.xlen(key) == 50


def test_runs_changed_is_quiet_about_a_stream_interval_stored_before_the_ledger(
    capsys: pytest.CaptureFixture[str], key: str, audits: psycopg.Connection[Any]
) -> None:
    """A row stored before run_audit had a ledger (migration 0015) names its stream's first entry and
    its records; the stream still holding exactly those entries is no change."""
    r: Any = client()
    start = _ten_minutes(datetime.now(UTC) - timedelta(days=1))
    ids = [add(r, key, start + timedelta(seconds=n), event(f"old-{n}", start)) for n in range(5)]
    audits.execute(
        "INSERT INTO run_audit (dag_id, interval_start, interval_end, source, extracted, loaded, rejected, "
        "deduplicated, rejected_share, max_rejected_share, gate, by_reason, extra_fields, "
        "extra_field_names, imputed, written_by_run, first_entry_id) VALUES ('10_etl_ml_pipeline', %s, "
        "%s, 'redis_stream', 5, 5, 0, 0, 0, 0.05, 'passed', '{}', '{}', 0, '{}', 'before-0015', %s)",
        (start, start + timedelta(minutes=10), ids[0]),
    )
    audits.commit()
    window = ["--from", start.isoformat(), "--to", (start + timedelta(minutes=10)).isoformat(), "--json"]
    code, out, _ = etlml(capsys, "runs", "changed", *window)
    assert code == 0 and json.loads(out) == []
    # an entry added late into it is a change
    add(r, key, start + timedelta(minutes=9), event("late", start))
    code, out, _ = etlml(capsys, "runs", "changed", *window)
    assert code == 0 and [c["entries"] for c in json.loads(out)] == [{"read": 5, "now": 6}]


def test_a_start_date_off_the_ten_minute_grid_does_not_stop_the_trim(
    capsys: pytest.CaptureFixture[str],
    key: str,
    audits: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ETLML_START_DATE at 12:05 the first interval is 12:10-12:20 (the timetable's first tick at
    or after it): 12:00-12:10 never runs, so it must not count as an interval not yet stored."""
    r: Any = client()
    grid = _ten_minutes(datetime.now(UTC) - timedelta(days=10))
    _since(monkeypatch, grid + timedelta(minutes=5))
    _stored(audits, grid + timedelta(minutes=10), datetime.now(UTC) - timedelta(days=6))
    for n, at in enumerate(
        [grid + timedelta(minutes=15), grid + timedelta(days=1), grid + timedelta(days=5)]
    ):
        add(r, key, at, event(f"e-{n}", at))
    code, out, _ = etlml(capsys, "stream", "trim", "--keep-days", "7")
    assert code == 0
    result = json.loads(out)
    assert result["removed"] == 1, result
    assert [e[1][b"event_id"] for e in r.xrange(key)] == [b"e-1", b"e-2"]


def test_trimming_a_key_that_is_not_a_stream_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], key: str
) -> None:
    r: Any = client()
    r.set(key, "not a stream")
    code, out, err = etlml(capsys, "stream", "trim", "--keep-days", "7", "--force")
    assert (code, out) == (2, "")
    assert "holds a string, not a stream" in err and "ETLML_STREAM_KEY" in err and "unexpected" not in err
    assert r.get(key) == b"not a stream"
