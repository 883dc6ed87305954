"""`etlml runs gaps`: the intervals of a window to backfill, from what run_audit holds."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from etlml import cli
from etlml.ingest.contract import Counts
from etlml.interval import Interval, every
from etlml.quality import Audit
from etlml.warehouse import writes

pytestmark = pytest.mark.db

HOUR = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PIPELINE = "10_etl_ml_pipeline"


def audited(conn: psycopg.Connection[Any], interval: Interval, rejected: int, dag_id: str = PIPELINE) -> None:
    """A run_audit row as load_processed writes it: 100 records, ``rejected`` of them rejected."""
    counts = Counts(extracted=100, accepted=100 - rejected, rejected=rejected, deduplicated=0)
    audit = Audit("simulator", counts, max_rejected_share=0.05)
    writes.store_audit(conn, dag_id, interval, f"{dag_id}/r", audit, load_id=str(uuid.uuid4()))


def gaps(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    try:
        code = cli.main(["runs", "gaps", *args])
    except SystemExit as exit_:  # argparse refuses a malformed command line this way
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in args else out), err


def test_intervals_without_a_run_that_passed_its_gate(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hour = every(HOUR, HOUR + timedelta(hours=1))
    assert [i.start.minute for i in hour] == [0, 10, 20, 30, 40, 50]
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        audited(conn, hour[0], rejected=0)
        audited(conn, hour[2], rejected=2)  # passed, with rejections
        audited(conn, hour[3], rejected=40)  # failed its gate: to be rerun
        audited(conn, hour[4], rejected=0, dag_id="another_dag")
    window = ["--from", "2026-11-22T09:00:00Z", "--to", "2026-11-22T10:00:00Z"]
    code, listed, _ = gaps(capsys, *window, "--json")
    assert code == 0
    assert listed == [
        {"interval_start": i.start.isoformat(), "interval_end": i.end.isoformat()}
        for i in (hour[1], hour[3], hour[4], hour[5])
    ]
    # a window that does not start on a boundary holds only the intervals wholly inside it
    code, listed, _ = gaps(
        capsys, "--from", "2026-11-22T09:05:00+00:00", "--to", "2026-11-22T09:40:00Z", "--json"
    )
    assert [row["interval_start"] for row in listed] == [hour[1].start.isoformat(), hour[3].start.isoformat()]
    code, table, _ = gaps(capsys, *window)
    assert code == 0 and table.splitlines()[0].split() == ["INTERVAL_START", "INTERVAL_END"]
    assert len(table.splitlines()) == 5


def test_intervals_that_have_not_ended_are_no_gaps(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    code, listed, _ = gaps(
        capsys,
        "--from",
        (now - timedelta(minutes=30)).isoformat(),
        "--to",
        (now + timedelta(hours=1)).isoformat(),
        "--json",
    )
    assert code == 0
    assert 2 <= len(listed) <= 3
    assert all(datetime.fromisoformat(row["interval_end"]) <= now for row in listed)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--from", "2026-11-22T10:00:00Z", "--to", "2026-11-22T09:00:00Z"], "must be before --to"),
        (["--from", "2026-11-22T09:00:00", "--to", "2026-11-22T10:00:00Z"], "needs a UTC offset"),
    ],
)
def test_a_bad_window_is_one_line_and_status_2(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    code, _, err = gaps(capsys, *args)
    assert code == 2
    assert said in err and len(err.strip().splitlines()) == 1


def test_intervals_before_the_start_date_are_no_gaps(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hour = every(HOUR, HOUR + timedelta(hours=1))
    window = ["--from", HOUR.isoformat(), "--to", (HOUR + timedelta(hours=1)).isoformat(), "--json"]
    monkeypatch.setenv("ETLML_START_DATE", hour[2].start.isoformat())
    code, listed, _ = gaps(capsys, *window)
    assert code == 0
    assert [row["interval_start"] for row in listed] == [i.start.isoformat() for i in hour[2:]]
    # a start between two boundaries: the scheduler's first interval begins at the next one
    monkeypatch.setenv("ETLML_START_DATE", (hour[2].start + timedelta(minutes=5)).isoformat())
    code, listed, _ = gaps(capsys, *window)
    assert [row["interval_start"] for row in listed] == [i.start.isoformat() for i in hour[3:]]
    # a window wholly before the start holds no gap
    monkeypatch.setenv("ETLML_START_DATE", (HOUR + timedelta(days=1)).isoformat())
    assert gaps(capsys, *window)[:2] == (0, [])


@pytest.mark.parametrize("command", ["gaps", "changed"])
def test_a_window_longer_than_the_maximum_is_refused_before_anything_is_read(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    def run(start: datetime, end: datetime) -> tuple[int, str]:
        try:
            code = cli.main(["runs", command, "--from", start.isoformat(), "--to", end.isoformat()])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        return code, capsys.readouterr().err

    code, err = run(datetime(1990, 1, 1, tzinfo=UTC), HOUR)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("etlml: ") and "at most 31 days" in err
    assert run(HOUR - timedelta(days=31), HOUR) == (0, "")
    assert run(HOUR - timedelta(days=31, seconds=1), HOUR)[0] == 2


@pytest.mark.parametrize("command", ["gaps", "changed"])
@pytest.mark.parametrize(
    "start",
    [
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        "1969-12-31T23:59:59Z",
    ],
)
def test_a_date_out_of_range_is_one_line_and_status_2(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str], command: str, start: str
) -> None:
    try:
        code = cli.main(["runs", command, "--from", start, "--to", "2026-11-22T10:00:00Z"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("etlml: ") and "out of range" in err
