"""`etlml stream produce` and `etlml stream trim` against the real local Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

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


def test_trim_removes_what_arrived_before_the_retention(capsys: pytest.CaptureFixture[str], key: str) -> None:
    r: Any = client()
    old = datetime.now(UTC) - timedelta(days=10)
    add(r, key, old, event("old", old))
    add(r, key, old + timedelta(days=5), event("recent", old + timedelta(days=5)))
    code, out, _ = etlml(capsys, "stream", "trim", "--keep-days", "7")
    assert code == 0 and json.loads(out)["removed"] == 1
    assert [e[1][b"event_id"] for e in r.xrange(key)] == [b"recent"]


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
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etlml.steps.housekeeping import trim_stream

    r: Any = client()
    now = datetime.now(UTC)
    add(r, key, now - timedelta(days=8), event("old", now - timedelta(days=8)))
    add(r, key, now - timedelta(days=6), event("kept", now - timedelta(days=6)))
    monkeypatch.setenv("ETLML_SOURCE", "simulator")
    assert trim_stream(now) is None  # no stream to trim
    assert len(r.xrange(key)) == 2
    monkeypatch.setenv("ETLML_SOURCE", "redis_stream")
    assert trim_stream(now) == 1
    assert [e[1][b"event_id"] for e in r.xrange(key)] == [b"kept"]
