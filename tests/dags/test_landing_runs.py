"""dag.test() runs over landing partitions of good and bad files: every record is loaded and scored or
quarantined with a reason, the counts add up, and the run's state follows the quality gate."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etlml.interval import Interval
from etlml.steps.extract import extract
from etlml.steps.load_processed import load_processed
from etlml.steps.run import RunContext
from etlml.steps.transform import transform
from tests.dags.test_bad_config import task_states
from tests.dags.test_dag_runs import FULL_DIGEST, PIPELINE, PIPELINE_PARAMS, digests, xcom_values
from tests.helpers import doc_section
from tests.landing_files import INJECTION_ID, Expected, bad_partition, event, jsonl, mixed_partition, write

pytestmark = [pytest.mark.airflow, pytest.mark.db]

# An interval of its own: dag.test() on a logical date another test used would clear and reuse that
# run, with its run_conf.
LOGICAL = datetime(2026, 11, 25, 19, 10, tzinfo=UTC)
START = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
KEY = "2026-11-25/1900"  # the partition of [19:00, 19:10), the interval dag.test(LOGICAL) runs
RUN = RunContext(PIPELINE, "manual__landing", Interval(START, LOGICAL))
REJECTED_DIGEST = (
    "SELECT md5(string_agg(t::text, '|' ORDER BY source_file, row_number)) FROM rejected_events t"
)


@pytest.fixture
def landing_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ETLML_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", tmp_path.as_uri())
    return tmp_path


@pytest.fixture
def wh(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("TRUNCATE rejected_events, run_audit")
    conn.commit()
    return conn


def run(dags: dict[str, Any], logical_date: datetime = LOGICAL) -> Any:
    # explicit params: a run_conf given to dag.test() by an earlier test outlives its run
    return dags[PIPELINE].test(logical_date=logical_date, run_conf=dict(PIPELINE_PARAMS))


def stored(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Everything the warehouse holds about the interval [START, LOGICAL)."""
    s = {"s": START, "e": LOGICAL}
    processed = conn.execute(
        "SELECT event_id FROM processed_data WHERE interval_start = %(s)s AND interval_end = %(e)s", s
    ).fetchall()
    scored = conn.execute(
        "SELECT p.event_id FROM predictions p JOIN processed_data d USING (event_id) "
        "WHERE d.interval_start = %(s)s AND p.model_version = 'baseline_v1'",
        s,
    ).fetchall()
    rejected = conn.execute(
        "SELECT source_file, row_number, reason, raw, event_id FROM rejected_events "
        "WHERE interval_start = %(s)s",
        s,
    ).fetchall()
    audit = conn.execute(
        "SELECT extracted, loaded, rejected, deduplicated, gate, by_reason, extra_fields FROM run_audit "
        "WHERE dag_id = %(d)s AND interval_start = %(s)s",
        {**s, "d": PIPELINE},
    ).fetchone()
    return {
        "processed": {r[0] for r in processed},
        "scored": {r[0] for r in scored},
        "rejected": {(f, n): reason for f, n, reason, _, _ in rejected},
        "raw": {(f, n): bytes(raw) for f, n, _, raw, _ in rejected},
        "rejected_ids": {e for *_, e in rejected if e is not None},
        "audit": audit,
    }


def assert_accounted(got: dict[str, Any], exp: Expected, scored: bool = True) -> None:
    assert got["processed"] == exp.loaded
    assert got["scored"] == (exp.loaded if scored else set())
    assert got["rejected"] == exp.rejected
    for key, raw in exp.raw.items():
        assert got["raw"][key] == raw, key  # verbatim: NUL bytes, SQL-looking ids, 2 MB fields
    extracted, loaded, rejected, deduplicated, *_ = got["audit"]
    assert (extracted, loaded, rejected, deduplicated) == (
        exp.extracted,
        len(exp.loaded),
        exp.rejected_not_duplicate,
        exp.deduplicated,
    )
    assert extracted == loaded + rejected + deduplicated


def test_mixed_files_every_record_is_scored_or_quarantined(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    exp = mixed_partition(landing_root, START, KEY)
    dag_run = run(dags)
    assert dag_run.state == "success"
    got = stored(wh)
    assert_accounted(got, exp)
    assert got["audit"][4] == "passed"
    assert got["audit"][5] == {
        "invalid_number": 3,
        "invalid_event_id": 2,
        "malformed_record": 2,
        "future_timestamp": 1,
        "invalid_timestamp": 1,
        "outside_interval": 1,
    }
    assert got["audit"][6] == {"source_system": 63}
    assert INJECTION_ID in got["rejected_ids"]
    # the redelivered a-0000 comes from e.parquet (the last file); missing f2 values were imputed
    row = wh.execute(
        "SELECT f1, (SELECT bool_and(f2_imputed = (f2 IS NULL)) FROM processed_data), "
        "(SELECT count(*) FILTER (WHERE f2_imputed) FROM processed_data) FROM processed_data "
        "WHERE event_id = 'a-0000'"
    ).fetchone()
    assert row is not None and row[0] == 11.0 and row[1] is True and row[2] > 0
    values = xcom_values(PIPELINE, dag_run.run_id)
    for task_id, value in values.items():
        assert len(json.dumps(value)) < 1200, f"{task_id} pushed {value!r}"
    assert values["extract.run"]["counts"]["extracted"] == exp.extracted
    assert values["load_processed"]["audit"]["gate"] == "passed"
    # the documented queries run, and show this run
    section = doc_section("Landing files and quarantine")
    queries = section.split("```sql")[1].split("```")[0].replace("2026-11-25T18:10:00Z", START.isoformat())
    results = [wh.execute(q).fetchall() for q in queries.split(";") if q.strip()]
    assert [len(r) for r in results[:2]] == [1, len(exp.rejected)]  # the third depends on the clock


def test_rerun_is_byte_identical_and_fixed_files_leave_quarantine(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    exp = mixed_partition(landing_root, START, KEY)
    assert run(dags).state == "success"
    first = {**digests(wh, FULL_DIGEST), "rejected_events": digests(wh, {"r": REJECTED_DIGEST})["r"]}
    assert run(dags).state == "success"
    assert {**digests(wh, FULL_DIGEST), "rejected_events": digests(wh, {"r": REJECTED_DIGEST})["r"]} == first
    # the upstream fixes its delivery: b.jsonl.gz and the CSV files are gone, the rest unchanged.
    # A plain rerun would store less than the source held when the interval was stored: refused
    for name in ("b.jsonl.gz", "c.csv", "d.csv.gz"):
        (landing_root / KEY / name).unlink()
    dag_run = run(dags)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["load_processed"] == ("failed", 1)
    assert {**digests(wh, FULL_DIGEST), "rejected_events": digests(wh, {"r": REJECTED_DIGEST})["r"]} == first
    refused = wh.execute(
        "SELECT smaller_source_refused FROM run_audit WHERE interval_start = %s", (START,)
    ).fetchone()[0]
    assert any(f"{KEY}/b.jsonl.gz" in m and "3 file(s)" in m for m in refused["missing"])
    # the operator means it: the run is triggered with accept_smaller_source
    dag_run = dags[PIPELINE].test(
        logical_date=LOGICAL, run_conf={**PIPELINE_PARAMS, "accept_smaller_source": True}
    )
    assert dag_run.state == "success"
    kept_files = {f"{KEY}/a.jsonl", f"{KEY}/e.parquet"}
    exp.loaded = {e for e in exp.loaded if e[0] in "ae"}
    exp.rejected = {k: v for k, v in exp.rejected.items() if k[0] in kept_files}
    exp.raw = {k: v for k, v in exp.raw.items() if k[0] in kept_files}
    assert_accounted(stored(wh), exp)


def test_a_bad_partition_fails_the_gate_after_quarantining_without_retry(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = bad_partition(landing_root, START, KEY)
    dag_run = run(dags)
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["extract"][0] == states["transform"][0] == "success"
    assert states["load_processed"] == ("failed", 1)  # AirflowFailException: no retry
    assert states["predict"][0] == states["store_predictions"][0] == "upstream_failed"
    got = stored(wh)
    assert_accounted(got, exp, scored=False)  # quarantine and events committed; nothing scored
    assert got["audit"][4] == "failed"
    # the operator accepts this delivery: a higher threshold, then the run is cleared
    monkeypatch.setenv("ETLML_MAX_REJECTED_SHARE", "0.5")
    assert run(dags).state == "success"
    got = stored(wh)
    assert_accounted(got, exp)
    assert got["audit"][4] == "passed"


def test_the_gate_message_names_the_top_reasons(wh: psycopg.Connection[Any], landing_root: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    bad_partition(landing_root, START, KEY)
    extracted = extract(RUN, simulated_events=1)
    processed = [transform(RUN, extracted.plan, shard) for shard in extracted.shards]
    with pytest.raises(AirflowFailException) as failed:
        load_processed(RUN, extracted.plan, processed)
    message = str(failed.value)
    assert (
        "quality gate failed: 42 of 303 records of 20261125T190000Z_20261125T191000Z rejected (13.9%)"
        in message
    )
    assert "top reasons: invalid_number 33, invalid_event_id 2, malformed_record 2" in message
    assert "ETLML_MAX_REJECTED_SHARE=0.05" in message
    assert wh.execute("SELECT count(*) FROM rejected_events").fetchone() == (43,)  # committed before failing


def test_counts_that_do_not_add_up_write_nothing(wh: psycopg.Connection[Any], landing_root: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    mixed_partition(landing_root, START, KEY)
    extracted = extract(RUN, simulated_events=1)
    processed = [transform(RUN, extracted.plan, shard) for shard in extracted.shards]
    counts = extracted.plan.counts
    tampered = replace(extracted.plan, counts=replace(counts, extracted=counts.extracted + 1))
    with pytest.raises(
        AirflowFailException, match=r"do not add up: extracted 272 != loaded 260 \+ rejected 10"
    ):
        load_processed(RUN, tampered, processed)
    counts = wh.execute(
        "SELECT (SELECT count(*) FROM processed_data), (SELECT count(*) FROM rejected_events), "
        "(SELECT count(*) FROM run_audit)"
    ).fetchone()
    assert counts == (0, 0, 0)  # rolled back together


def test_a_missing_or_empty_partition_is_a_successful_run_with_zero_rows(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    assert run(dags).state == "success"
    assert stored(wh)["audit"][:5] == (0, 0, 0, 0, "passed")
    (landing_root / KEY).mkdir(parents=True)
    (landing_root / KEY / "_SUCCESS").touch()
    # another run of the same interval, over the now empty folder
    assert run(dags, LOGICAL + timedelta(minutes=5)).state == "success"
    got = stored(wh)
    assert got["processed"] == set()
    assert got["rejected"] == {}
    assert got["audit"][:5] == (0, 0, 0, 0, "passed")


def test_the_simulator_stays_the_default(dags: dict[str, Any], wh: psycopg.Connection[Any]) -> None:
    assert run(dags).state == "success"
    audit = wh.execute(
        "SELECT source, extracted, loaded, rejected, deduplicated, gate FROM run_audit"
    ).fetchall()
    assert audit == [("simulator", 200, 200, 0, 0, "passed")]
    assert wh.execute("SELECT count(*) FROM rejected_events").fetchone() == (0,)


def test_landing_runs_leave_no_files_behind_in_the_landing_area(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    mixed_partition(landing_root, START, KEY)
    before = sorted(p.name for p in (landing_root / KEY).iterdir())
    assert run(dags).state == "success"
    after = sorted(p.name for p in (landing_root / KEY).iterdir())
    assert after == before  # read-only: the files stay as delivered


def test_a_bad_setting_fails_extract_without_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("ETLML_SOURCE", "files")
    with pytest.raises(AirflowFailException, match="ETLML_SOURCE must be one of simulator, landing"):
        extract(RUN, simulated_events=1)


def test_missing_f1_f2_and_f3_are_imputed_end_to_end(
    dags: dict[str, Any], wh: psycopg.Connection[Any], landing_root: Path
) -> None:
    """The simulator only leaves f2 out; landing files may lack any feature. Through a whole run, a
    missing value is stored as NULL, flagged, normalized to 0 (the champion's mean) and scored so,
    and the run's audit counts it."""
    missing = {"f1": range(0, 40, 4), "f2": range(1, 40, 5), "f3": range(2, 40, 3)}
    records = []
    for n in range(40):
        values = {
            f: (None if n in missing[f] else v)
            for f, v in (("f1", 8.05 + n), ("f2", -1.013 + n / 20), ("f3", 90.07 + n))
        }
        records.append(event(f"imp-{n:02d}", START + timedelta(seconds=5 * n + 1), **values))
    records.append(
        {"event_id": "imp-none", "ts_utc": (START + timedelta(minutes=9)).isoformat()}
    )  # no feature
    write(landing_root / KEY / "features.jsonl", jsonl(records))
    assert run(dags).state == "success"
    rows = wh.execute(
        "SELECT d.event_id, d.f1 IS NULL, d.f1_imputed, d.f1_z, d.f2 IS NULL, d.f2_imputed, d.f2_z, "
        "d.f3 IS NULL, d.f3_imputed, d.f3_z, "
        # baseline_v1 recomputed from the raw values and its statistics N(10, 2), N(0, 1), N(100, 10)
        "abs(p.y_hat - (0.3 * coalesce((d.f1 - 10) / 2, 0) + 0.2 * coalesce(d.f2, 0) "
        "+ 0.5 * coalesce((d.f3 - 100) / 10, 0))) "
        "FROM processed_data d JOIN predictions p USING (event_id) "
        "WHERE d.interval_start = %s AND p.model_version = 'baseline_v1' ORDER BY d.event_id",
        (START,),
    ).fetchall()
    assert len(rows) == 41
    for event_id, *flags, error in rows:
        n = 40 if event_id == "imp-none" else int(event_id.removeprefix("imp-"))
        for i, feature in enumerate(("f1", "f2", "f3")):
            is_null, imputed, z = flags[3 * i : 3 * i + 3]
            gone = n == 40 or n in missing[feature]
            assert (is_null, imputed) == (gone, gone), (event_id, feature)
            assert (z == 0.0) if gone else (z != 0.0), (event_id, feature, z)
        assert error < 1e-12, event_id
    audit = wh.execute(
        "SELECT imputed FROM run_audit WHERE dag_id = %s AND interval_start = %s", (PIPELINE, START)
    ).fetchone()
    assert audit == ({f: len(missing[f]) + 1 for f in ("f1", "f2", "f3")},)


def test_links_and_oversized_files_are_quarantined_and_the_rest_loads(
    dags: dict[str, Any],
    wh: psycopg.Connection[Any],
    landing_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exp = mixed_partition(landing_root, START, KEY)
    secret = tmp_path_factory.mktemp("outside") / "environ"
    secret.write_bytes(b"AIRFLOW__CORE__FERNET_KEY=not-for-the-warehouse\n")
    (landing_root / KEY / "environ.txt").symlink_to(secret)
    bomb = gzip.compress(b" " * 5_000_000)
    (landing_root / KEY / "spaces.jsonl.gz").write_bytes(bomb)
    monkeypatch.setenv("ETLML_MAX_FILE_BYTES", "3000000")  # b.jsonl.gz inflates to 2 MB: read
    exp.rejected[(f"{KEY}/environ.txt", 0)] = "unsupported_file"
    exp.rejected[(f"{KEY}/spaces.jsonl.gz", 0)] = "file_too_large"
    exp.raw[(f"{KEY}/environ.txt", 0)] = b""  # nothing of the link's target
    exp.raw[(f"{KEY}/spaces.jsonl.gz", 0)] = bomb  # its first 64 KiB as stored: all of it
    assert run(dags).state == "success"  # 12 of 273 records rejected: under the gate
    assert_accounted(stored(wh), exp)
    raw = wh.execute("SELECT string_agg(encode(raw, 'escape'), '') FROM rejected_events").fetchone()
    assert raw is not None and "not-for-the-warehouse" not in raw[0]
