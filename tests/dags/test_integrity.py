"""Nothing lost, nothing stale: a broken challenger, a rerun that fails its gate, a store of an
outdated run, an event id delivered again in a later interval and a landing partition that is not
there, each under dag.test() or the steps themselves, on the real warehouse."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

import etlml
from etlml.interval import Interval
from etlml.models import registry
from etlml.steps.extract import extract
from etlml.steps.load_processed import load_processed
from etlml.steps.predict import predict
from etlml.steps.run import RunContext
from etlml.steps.store_predictions import store_predictions
from etlml.steps.transform import transform
from tests.dags.test_bad_config import task_states
from tests.dags.test_dag_runs import FULL_DIGEST, PIPELINE, PIPELINE_PARAMS, digests
from tests.dags.test_model_lifecycle import BASELINE_FORMULA, V2_STATS
from tests.helpers import register_sklearn
from tests.landing_files import event, jsonl, write

pytestmark = [pytest.mark.airflow, pytest.mark.db]

# Intervals of their own (dag.test() on a logical date another test used would reuse that run).
A = Interval(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), datetime(2026, 11, 24, 10, 10, tzinfo=UTC))
B = Interval(A.end, A.end + timedelta(minutes=10))
DIGESTS = {
    **FULL_DIGEST,
    "rejected_events": "SELECT md5(string_agg(t::text, '|' ORDER BY interval_start, source_file, "
    "row_number)) FROM rejected_events t",
}


def run(dags: dict[str, Any], interval: Interval) -> Any:
    """One dag.test() run of ``interval`` (its logical date is the interval's end)."""
    return dags[PIPELINE].test(logical_date=interval.end, run_conf=dict(PIPELINE_PARAMS))


def folder(root: Path, interval: Interval) -> Path:
    return root / f"{interval.start:%Y-%m-%d}" / f"{interval.start:%H%M}"


def deliver(root: Path, interval: Interval, name: str, ids: list[str], f1: float = 10.0) -> None:
    """A JSONL file of valid events with these ids, a second apart from the interval's start."""
    records = [event(i, interval.start + timedelta(seconds=n), f1=f1 + n) for n, i in enumerate(ids)]
    write(folder(root, interval) / name, jsonl(list(records)))


def disagreeing(conn: psycopg.Connection[Any], interval: Interval) -> tuple[int, int]:
    """The champion's (baseline_v1) predictions of the interval's events, and how many of them
    disagree with the features processed_data now holds."""
    row = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE abs(p.y_hat - ({BASELINE_FORMULA})) > 1e-9) "
        "FROM predictions p JOIN processed_data d USING (event_id) "
        "WHERE p.model_version = 'baseline_v1' AND d.interval_start = %s",
        (interval.start,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def orphans(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM predictions p WHERE NOT EXISTS "
        "(SELECT 1 FROM processed_data d WHERE d.event_id = p.event_id)"
    ).fetchone()
    assert row is not None
    return int(row[0])


def audit(conn: psycopg.Connection[Any], interval: Interval) -> dict[str, Any]:
    cur = conn.execute(
        "SELECT * FROM run_audit WHERE dag_id = %s AND interval_start = %s", (PIPELINE, interval.start)
    )
    row = cur.fetchone()
    assert row is not None, f"no run_audit row for {interval.key}"
    assert cur.description is not None
    return dict(zip([c.name for c in cur.description], row, strict=True))


def rows_of(conn: psycopg.Connection[Any], interval: Interval) -> int:
    row = conn.execute("SELECT count(*) FROM processed_data WHERE interval_start = %s", (interval.start,))
    return int(row.fetchone()[0])  # type: ignore[index]


@pytest.fixture
def wh(fresh_migrated: str) -> Iterator[psycopg.Connection[Any]]:
    """A warehouse of this test's own, every table empty but the baseline registry."""
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        yield conn


@pytest.fixture
def landing_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "landing"
    root.mkdir()
    monkeypatch.setenv("ETLML_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", root.as_uri())
    return root


# --- 1. a shadow model never takes production down ---------------------------------------------------


def _sklearn_challenger(conn: psycopg.Connection[Any], tmp_path: Path, *, coef_scale: float = 1.0) -> Path:
    """Register and shadow ``sk1``; returns the path of its stored artifact."""
    uri = register_sklearn(conn, "sk1", tmp_path, tmp_path.as_uri(), V2_STATS, coef_scale=coef_scale)
    registry.shadow(conn, "sk1", "t")
    return Path(uri.removeprefix("file://"))


def _tamper(artifact: Path) -> None:
    with artifact.open("ab") as f:
        f.write(b"7 bytes")


BREAKAGES = {
    "tampered": (1.0, _tamper, "sha256"),
    "missing": (1.0, Path.unlink, "sk1"),
    "non_finite": (1e308, lambda artifact: None, "non-finite"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
@pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning"
)  # the non-finite model's, on purpose
def test_a_broken_challenger_leaves_the_champions_predictions_and_is_recorded(
    dags: dict[str, Any],
    wh: psycopg.Connection[Any],
    tmp_path: Path,
    breakage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scale, damage, said = BREAKAGES[breakage]
    damage(_sklearn_challenger(wh, tmp_path, coef_scale=scale))
    with caplog.at_level(logging.WARNING):
        dag_run = run(dags, A)
    assert dag_run.state == "success"
    assert disagreeing(wh, A) == (200, 0)
    assert wh.execute("SELECT count(*) FROM predictions WHERE model_version = 'sk1'").fetchone() == (0,)
    error = audit(wh, A)["challenger_error"]
    assert error is not None and "sk1" in error and said in error
    assert any("challenger" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_a_challenger_that_scores_again_clears_its_recorded_error(
    dags: dict[str, Any], wh: psycopg.Connection[Any], tmp_path: Path
) -> None:
    artifact = _sklearn_challenger(wh, tmp_path)
    good = artifact.read_bytes()
    _tamper(artifact)
    assert run(dags, A).state == "success"
    assert audit(wh, A)["challenger_error"] is not None
    artifact.write_bytes(good)
    assert run(dags, A).state == "success"
    assert audit(wh, A)["challenger_error"] is None
    assert wh.execute("SELECT count(*) FROM predictions WHERE model_version = 'sk1'").fetchone() == (200,)


def test_a_broken_champion_still_fails_the_run(
    dags: dict[str, Any], wh: psycopg.Connection[Any], tmp_path: Path
) -> None:
    artifact = _sklearn_challenger(wh, tmp_path)
    registry.promote(wh, "sk1", "t")
    _tamper(artifact)
    dag_run = run(dags, A)
    assert dag_run.state == "failed"
    failed = {task for task, (state, _) in task_states(dag_run).items() if state == "failed"}
    assert failed & {"extract", "predict"}  # extract checks the champion first; predict loads it
    assert wh.execute("SELECT count(*) FROM predictions").fetchone() == (0,)


# --- 2. no stale predictions after a failed gate -------------------------------------------------------


def test_a_rerun_that_fails_its_gate_leaves_no_prediction_of_old_features(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    ids = [f"e-{n:03d}" for n in range(100)]
    deliver(landing_root, A, "a.jsonl", ids)
    assert run(dags, A).state == "success"
    assert disagreeing(wh, A) == (100, 0)
    # the upstream redelivers the file with other features, and a file of garbage beside it
    deliver(landing_root, A, "a.jsonl", ids, f1=50.0)
    write(folder(landing_root, A) / "b.jsonl", b"not json\n" * 20)
    dag_run = run(dags, A)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["load_processed"] == ("failed", 1)  # the gate
    assert rows_of(wh, A) == 100
    assert wh.execute("SELECT min(f1) FROM processed_data").fetchone() == (50.0,)  # the new features
    scored, stale = disagreeing(wh, A)
    assert stale == 0, f"{stale} of {scored} predictions were computed from features no longer stored"
    assert orphans(wh) == 0


# --- 3. no orphan predictions ------------------------------------------------------------------------


def _steps_until_predict(ctx: RunContext) -> Any:
    extracted = extract(ctx, simulated_events=1)
    processed = [transform(ctx, extracted.plan, s) for s in extracted.shards]
    loaded = load_processed(ctx, extracted.plan, processed)
    return [predict(ctx, extracted.plan, p, loaded.ref) for p in processed]


@contextmanager
def logged(name: str) -> Iterator[list[logging.LogRecord]]:
    """The records of logger ``name`` at INFO and above, whatever Airflow made of the root logger."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_the_predictions_of_a_superseded_load_end_green_as_a_no_op(
    wh: psycopg.Connection[Any],
    landing_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two runs of one interval (a manual run beside the scheduled one): the older run's store, after
    the newer run loaded and stored, stores nothing, names the load that replaced it, and succeeds."""
    ids = [f"e-{n:03d}" for n in range(100)]
    deliver(landing_root, A, "a.jsonl", ids)
    monkeypatch.setenv("ETLML_STORAGE_ROOT", (tmp_path / "first").as_uri())
    first = _steps_until_predict(RunContext(PIPELINE, "manual__first", A))
    # a later run of the interval, over a delivery that lost half the events (which its operator
    # accepted), runs to the end
    deliver(landing_root, A, "a.jsonl", ids[:50])
    monkeypatch.setenv("ETLML_STORAGE_ROOT", (tmp_path / "second").as_uri())
    later = RunContext(PIPELINE, "manual__second", A, accept_smaller_source=True)
    for shard in _steps_until_predict(later):
        store_predictions(later, shard)
    assert (rows_of(wh, A), orphans(wh)) == (50, 0)
    before = digests(wh, FULL_DIGEST)
    # then the first run's store_predictions runs (or is cleared and runs again)
    with logged("etlml.steps.store_predictions") as records:
        stored = [store_predictions(RunContext(PIPELINE, "manual__first", A), shard) for shard in first]
    said = " ".join(r.getMessage() for r in records)
    assert [(s.stored, s.superseded_by) for s in stored] == [((), "10_etl_ml_pipeline/manual__second")]
    assert stored[0].to_xcom()["superseded_by"] == "10_etl_ml_pipeline/manual__second"
    assert "superseded by load" in said and "of 10_etl_ml_pipeline/manual__second" in said
    assert digests(wh, FULL_DIGEST) == before
    assert orphans(wh) == 0
    assert disagreeing(wh, A) == (50, 0)


# --- 4. an event id seen in an earlier interval is not moved -----------------------------------------


def test_a_redelivered_id_stays_in_the_interval_that_stored_it_first(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    deliver(landing_root, A, "a.jsonl", [f"a-{n:03d}" for n in range(100)])
    deliver(landing_root, B, "b.jsonl", ["a-000", "a-001"] + [f"b-{n:03d}" for n in range(98)], f1=40.0)
    assert run(dags, A).state == "success"
    before = wh.execute("SELECT event_id, f1 FROM processed_data WHERE event_id IN ('a-000', 'a-001')")
    kept = sorted(before.fetchall())
    assert run(dags, B).state == "success"
    assert (
        sorted(
            wh.execute(
                "SELECT event_id, f1 FROM processed_data WHERE event_id IN ('a-000', 'a-001')"
            ).fetchall()
        )
        == kept
    )
    assert (rows_of(wh, A), rows_of(wh, B)) == (100, 98)
    redelivered = wh.execute(
        "SELECT event_id, row_number, message, raw FROM rejected_events "
        "WHERE interval_start = %s AND reason = 'redelivered' ORDER BY event_id",
        (B.start,),
    ).fetchall()
    assert [r[:2] for r in redelivered] == [("a-000", 1), ("a-001", 2)]
    assert all(A.key in message for _, _, message, _ in redelivered)
    assert json.loads(bytes(redelivered[0][3]))["f1"] == 40.0  # the later delivery's own bytes
    for interval, loaded, deduplicated in ((A, 100, 0), (B, 98, 2)):
        got = audit(wh, interval)
        assert (got["extracted"], got["loaded"], got["deduplicated"]) == (100, loaded, deduplicated)
        assert got["loaded"] == rows_of(wh, interval)
    assert disagreeing(wh, A) == (100, 0)
    assert disagreeing(wh, B) == (98, 0)
    first = digests(wh, DIGESTS)
    for interval in (A, B, B, A, B):
        assert run(dags, interval).state == "success"
        assert digests(wh, DIGESTS) == first, f"a rerun of {interval.key} changed the tables"


def test_when_the_later_interval_runs_first_it_keeps_the_id(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    deliver(landing_root, A, "a.jsonl", ["x-1", "a-1"])
    deliver(landing_root, B, "b.jsonl", ["x-1", "b-1"], f1=40.0)
    assert run(dags, B).state == "success"
    assert run(dags, A).state == "success"
    held = wh.execute("SELECT interval_start, f1 FROM processed_data WHERE event_id = 'x-1'").fetchall()
    assert held == [(B.start, 40.0)]
    assert (audit(wh, A)["loaded"], audit(wh, A)["deduplicated"]) == (1, 1)
    assert orphans(wh) == 0


# --- 5. a missing source is not an empty interval ----------------------------------------------------


def test_a_landing_root_that_does_not_exist_fails_without_retry_and_writes_nothing(
    dags: dict[str, Any], wh: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(dags, A).state == "success"  # the simulator stores 200 events
    before = digests(wh, DIGESTS)
    monkeypatch.setenv("ETLML_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", (tmp_path / "nonexistent").as_uri())
    dag_run = run(dags, A)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["extract"] == ("failed", 1)
    assert digests(wh, DIGESTS) == before


def test_a_missing_partition_keeps_what_the_interval_holds(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(landing_root, A, "a.jsonl", [f"e-{n:03d}" for n in range(100)])
    write(folder(landing_root, A) / "b.jsonl", b"not json\n")
    assert run(dags, A).state == "success"
    before = digests(wh, DIGESTS)
    stored_audit = audit(wh, A)
    # the producer archives the folder after it was processed
    for path in folder(landing_root, A).iterdir():
        path.unlink()
    folder(landing_root, A).rmdir()
    with caplog.at_level(logging.WARNING):
        assert run(dags, A).state == "success"
    assert digests(wh, DIGESTS) == before
    assert audit(wh, A) == stored_audit
    assert any("kept" in r.getMessage() and "100" in r.getMessage() for r in caplog.records)


def test_a_landing_run_never_removes_rows_another_source_stored(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("ETLML_SOURCE", "simulator")
    assert run(dags, A).state == "success"
    monkeypatch.undo()
    before = digests(wh, DIGESTS)
    folder(landing_root, A).mkdir(parents=True)  # a partition that exists and is empty
    dag_run = run(dags, A)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["load_processed"] == ("failed", 1)
    assert digests(wh, DIGESTS) == before
    assert rows_of(wh, A) == 200


# --- 6. a rerun never stores less than its source held (the ledger) --------------------------------


def _refused(conn: psycopg.Connection[Any], interval: Interval) -> list[str]:
    row = conn.execute(
        "SELECT smaller_source_refused FROM run_audit WHERE dag_id = %s AND interval_start = %s",
        (PIPELINE, interval.start),
    ).fetchone()
    assert row is not None and row[0] is not None, "the refusal is recorded on the interval's audit"
    return list(row[0]["missing"])


@pytest.mark.parametrize("change", ["removed", "shrunk", "renamed", "emptied"])
def test_a_landing_folder_that_lost_records_or_files_is_refused_and_nothing_stored_changes(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path, change: str
) -> None:
    ids = [f"e-{n:03d}" for n in range(100)]
    deliver(landing_root, A, "a.jsonl", ids[:60])
    deliver(landing_root, A, "b.jsonl", ids[60:])
    assert run(dags, A).state == "success"
    before, stored_audit = digests(wh, DIGESTS), audit(wh, A)
    ledger = wh.execute(
        "SELECT ledger FROM run_audit WHERE dag_id = %s AND interval_start = %s", (PIPELINE, A.start)
    ).fetchone()[0]
    b_file = f"{A.start:%Y-%m-%d}/{A.start:%H%M}/b.jsonl"
    assert ledger["records"] == 100 and len(ledger["files"][b_file]["sha256"]) == 64
    partition = folder(landing_root, A)
    if change == "removed":
        (partition / "b.jsonl").unlink()
    elif change == "shrunk":  # the same name, a copy restored from before the producer finished
        deliver(landing_root, A, "b.jsonl", ids[60:70])
    elif change == "renamed":
        (partition / "b.jsonl").rename(partition / "b2.jsonl")
    else:  # the folder is still there, empty
        for path in partition.iterdir():
            path.unlink()
    dag_run = run(dags, A)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["load_processed"] == ("failed", 1)
    assert digests(wh, DIGESTS) == before
    assert {**audit(wh, A), "smaller_source_refused": None} == stored_audit
    missing = " ".join(_refused(wh, A))
    if change == "shrunk":
        assert "70 records" in missing and "read 100" in missing
    else:
        assert "b.jsonl" in missing


def test_growth_is_a_plain_merge_and_a_later_load_clears_the_refusal(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    deliver(landing_root, A, "a.jsonl", [f"e-{n:03d}" for n in range(50)])
    assert run(dags, A).state == "success"
    (folder(landing_root, A) / "a.jsonl").rename(folder(landing_root, A) / "keep.jsonl.off")
    assert run(dags, A).state == "failed"
    assert _refused(wh, A)
    (folder(landing_root, A) / "keep.jsonl.off").rename(folder(landing_root, A) / "a.jsonl")
    # a late file lands: more than was stored, loaded without asking
    deliver(landing_root, A, "late.jsonl", [f"late-{n:03d}" for n in range(5)])
    assert run(dags, A).state == "success"
    assert rows_of(wh, A) == 55
    refused, accepted, version = wh.execute(
        "SELECT smaller_source_refused, smaller_source_accepted, etlml_version FROM run_audit "
        "WHERE dag_id = %s AND interval_start = %s",
        (PIPELINE, A.start),
    ).fetchone()
    assert (refused, accepted) == (None, None)
    assert version == etlml.version() != "unknown"


def test_an_operator_accepts_a_smaller_source_and_run_audit_says_who(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    deliver(landing_root, A, "a.jsonl", [f"e-{n:03d}" for n in range(100)])
    assert run(dags, A).state == "success"
    deliver(landing_root, A, "a.jsonl", [f"e-{n:03d}" for n in range(40)])  # withdrawn on purpose
    assert run(dags, A).state == "failed"
    dag_run = dags[PIPELINE].test(
        logical_date=A.end, run_conf={**PIPELINE_PARAMS, "accept_smaller_source": True}
    )
    assert dag_run.state == "success", task_states(dag_run)
    assert (rows_of(wh, A), orphans(wh)) == (40, 0)
    accepted, refused, dag_version = wh.execute(
        "SELECT smaller_source_accepted, smaller_source_refused, dag_version_id FROM run_audit "
        "WHERE dag_id = %s AND interval_start = %s",
        (PIPELINE, A.start),
    ).fetchone()
    assert refused is None
    assert accepted["by"] == "dag_test" and accepted["run"] == f"{PIPELINE}/{dag_run.run_id}"
    assert any("40 records" in m and "read 100" in m for m in accepted["missing"])
    assert dag_version is not None


def test_runs_status_shows_where_each_interval_stands(
    dags: dict[str, Any],
    wh: psycopg.Connection[Any],
    landing_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from etlml import cli

    deliver(landing_root, A, "a.jsonl", [f"e-{n:03d}" for n in range(100)])
    assert run(dags, A).state == "success"
    deliver(landing_root, A, "a.jsonl", [f"e-{n:03d}" for n in range(90)])
    assert run(dags, A).state == "failed"  # refused: the file lost 10 records
    monkeypatch.setenv("ETLML_START_DATE", A.start.isoformat())
    window = ["--from", (A.start - timedelta(minutes=20)).isoformat(), "--to", (B.end).isoformat()]

    def status(*extra: str) -> list[dict[str, Any]]:
        capsys.readouterr()
        assert cli.main(["runs", "status", *window, "--json", *extra]) == 0
        return list(json.loads(capsys.readouterr().out))

    rows = status()
    # intervals before ETLML_START_DATE are not the pipeline's: not listed
    assert [r["interval_start"] for r in rows] == [A.start.isoformat(), B.start.isoformat()]
    a, b = rows
    assert (a["source"], a["extracted"], a["loaded"], a["gate"]) == ("landing", 100, 100, "passed")
    assert a["model_versions"] == ["baseline_v1"]
    assert a["etlml_version"] == etlml.version() and a["dag_version_id"]
    assert a["flags"] == ["changed", "smaller_source_refused"]
    assert any("90 records" in m for m in a["smaller_source_refused"]["missing"])
    assert (b["source"], b["gate"], b["flags"]) == (None, None, ["gap"])
    assert status("--skip-sources")[0]["flags"] == ["smaller_source_refused"]
    # the table: one line per interval, flags last
    capsys.readouterr()
    assert cli.main(["runs", "status", *window]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and table[0].split()[0] == "INTERVAL" and table[2].endswith("gap")


def test_a_file_name_that_is_not_utf8_is_recorded_escaped_and_the_rule_still_holds(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    partition = folder(landing_root, A)
    deliver(landing_root, A, "a.jsonl", [f"e-{n:03d}" for n in range(20)])
    odd = partition.as_posix().encode() + b"/b\xff.jsonl"
    with open(odd, "wb") as out:
        out.write(jsonl([event("odd-1", A.start)]))
    assert run(dags, A).state == "success"
    files = wh.execute(
        "SELECT ledger -> 'files' FROM run_audit WHERE dag_id = %s AND interval_start = %s",
        (PIPELINE, A.start),
    ).fetchone()[0]
    assert len(files) == 2 and any("\\udcff" in name for name in files)
    assert run(dags, A).state == "success"  # the same names again: nothing is missing
    os.unlink(odd)
    assert run(dags, A).state == "failed"
    assert "b\\udcff.jsonl" in " ".join(_refused(wh, A))


def test_a_file_that_lost_records_is_refused_though_a_late_file_makes_up_the_count(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    ids = [f"e-{n:03d}" for n in range(100)]
    deliver(landing_root, A, "a.jsonl", ids[:60])
    deliver(landing_root, A, "b.jsonl", ids[60:])
    assert run(dags, A).state == "success"
    before = digests(wh, DIGESTS)
    # b.jsonl restored from a copy taken before its producer finished, and a late file lands: the
    # folder holds as many records as before, but 30 of the stored events are no longer in it
    deliver(landing_root, A, "b.jsonl", ids[60:70])
    deliver(landing_root, A, "late.jsonl", [f"late-{n:03d}" for n in range(30)])
    dag_run = run(dags, A)
    assert dag_run.state == "failed", "a rerun removed stored events its source no longer holds"
    assert task_states(dag_run)["load_processed"] == ("failed", 1)
    assert digests(wh, DIGESTS) == before
    assert "b.jsonl" in " ".join(_refused(wh, A))


def test_a_missing_partition_is_no_smaller_source_when_the_interval_held_no_rows(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    # the interval was delivered as a file without records (a header only), then archived
    write(folder(landing_root, A) / "a.csv", b"event_id,ts_utc,f1,f2,f3\n")
    assert run(dags, A).state == "success"
    stored_audit = audit(wh, A)
    (folder(landing_root, A) / "a.csv").unlink()
    folder(landing_root, A).rmdir()
    dag_run = run(dags, A)
    assert dag_run.state == "success", task_states(dag_run)  # absence removes nothing, and refuses nothing
    assert audit(wh, A) == stored_audit


# --- 6. a file changed under a run -------------------------------------------------------------------

C = Interval(B.end + timedelta(hours=1), B.end + timedelta(hours=1, minutes=10))


def test_a_file_changed_under_a_run_fails_the_task_on_its_first_try(
    dags: dict[str, Any], wh: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between extract and transform of a real run, a byte of the shard file extract wrote (and
    recorded the sha256 of) is changed on disk: transform fails on try 1 and is not retried, and
    nothing of the interval is stored."""
    import etlml.steps.transform as transform_step
    from etlml.storage import at

    monkeypatch.setenv("ETLML_STORAGE_ROOT", (tmp_path / "storage").as_uri())
    real = transform_step.transform
    changed: list[str] = []

    def change_the_shard_then_transform(run: Any, plan: Any, shard: Any) -> Any:
        path = at(shard.events.path)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one byte, in place: size and name unchanged
        path.write_bytes(bytes(data))
        changed.append(shard.events.path)
        return real(run, plan, shard)

    monkeypatch.setattr(transform_step, "transform", change_the_shard_then_transform)
    dag_run = run(dags, C)
    assert changed, "transform never ran"
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["extract"] == ("success", 1)
    assert states["transform"] == ("failed", 1)  # no retry, though the task has retries
    assert dags[PIPELINE].get_task("transform").retries == 3
    assert states["load_processed"][0] == "upstream_failed"
    assert rows_of(wh, C) == 0
