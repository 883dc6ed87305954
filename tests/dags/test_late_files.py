"""A landing file that appears after its interval ran: `etlml runs gaps` does not list the interval (it
ran), `etlml runs changed` does, and a rerun of the interval picks the file up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etlml import cli
from etlml.interval import Interval
from tests.dags.test_integrity import deliver, folder, rows_of, run

pytestmark = [pytest.mark.airflow, pytest.mark.db]

LATE = Interval(datetime(2026, 11, 24, 11, 0, tzinfo=UTC), datetime(2026, 11, 24, 11, 10, tzinfo=UTC))
WINDOW = ["--from", "2026-11-24T11:00:00Z", "--to", "2026-11-24T11:10:00Z", "--json"]


def runs(capsys: pytest.CaptureFixture[str], command: str) -> Any:
    capsys.readouterr()  # what the DAG runs printed before
    code = cli.main(["runs", command, *WINDOW])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_a_late_file_is_listed_as_changed_and_a_rerun_picks_it_up(
    dags: dict[str, Any],
    fresh_migrated: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "landing"
    root.mkdir()
    monkeypatch.setenv("ETLML_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", root.as_uri())
    deliver(root, LATE, "a.jsonl", [f"a-{n:02d}" for n in range(50)])
    assert run(dags, LATE).state == "success"
    assert runs(capsys, "gaps") == [] and runs(capsys, "changed") == []

    # after the run: a file lands late, and the first one is redelivered with one more record
    deliver(root, LATE, "b.jsonl", [f"b-{n:02d}" for n in range(30)])
    deliver(root, LATE, "a.jsonl", [f"a-{n:02d}" for n in range(51)])
    key = f"{LATE.start:%Y-%m-%d}/{LATE.start:%H%M}"
    assert runs(capsys, "gaps") == []  # the interval ran successfully: no gap
    listed = runs(capsys, "changed")
    assert [{k: v for k, v in c.items() if k != "what"} for c in listed] == [
        {
            "dag_id": "10_etl_ml_pipeline",
            "interval_start": LATE.start.isoformat(),
            "interval_end": LATE.end.isoformat(),
            "source": "landing",
            "added": [f"{key}/b.jsonl"],
            "removed": [],
            "resized": [f"{key}/a.jsonl"],
            "rewritten": [],
        }
    ]
    assert listed[0]["what"] == f"1 file(s) added: {key}/b.jsonl; 1 file(s) resized: {key}/a.jsonl"
    with psycopg.connect(fresh_migrated) as conn:
        assert rows_of(conn, LATE) == 50
    assert run(dags, LATE).state == "success"  # the rerun reads the folder as it is now
    with psycopg.connect(fresh_migrated) as conn:
        assert rows_of(conn, LATE) == 81
        recorded = conn.execute("SELECT files FROM run_audit WHERE interval_start = %s", (LATE.start,))
        assert set(recorded.fetchone()[0]) == {f"{key}/a.jsonl", f"{key}/b.jsonl"}  # type: ignore[index]
    assert runs(capsys, "changed") == []
    # a file rewritten with other content of the same size: its checksum tells
    b_file = folder(root, LATE) / "b.jsonl"
    b_file.write_bytes(b_file.read_bytes().replace(b"b-00", b"b-99"))
    listed = runs(capsys, "changed")
    assert [(c["rewritten"], c["resized"]) for c in listed] == [([f"{key}/b.jsonl"], [])]
    deliver(root, LATE, "b.jsonl", [f"b-{n:02d}" for n in range(30)])
    assert runs(capsys, "changed") == []  # back as it was read (the same bytes, a new mtime)
    # the producer archives the folder: absence removes nothing, so nothing is listed
    for path in folder(root, LATE).iterdir():
        path.unlink()
    folder(root, LATE).rmdir()
    assert runs(capsys, "changed") == []
    assert runs(capsys, "gaps") == []
