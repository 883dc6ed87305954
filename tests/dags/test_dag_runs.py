"""Both DAGs run with dag.test() against the real warehouse database, checked row by row."""

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from etlml.warehouse import schema

pytestmark = [pytest.mark.airflow, pytest.mark.db]

PIPELINE = "10_etl_ml_pipeline"
# dag.test(logical_date=18:10) runs the interval that ends there: [18:00, 18:10).
LOGICAL = datetime(2026, 11, 25, 18, 10, tzinfo=UTC)
START = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)

FULL_DIGEST = {
    "processed_data": "SELECT md5(string_agg(t::text, '|' ORDER BY event_id)) FROM processed_data t",
    "predictions": "SELECT md5(string_agg(t::text, '|' ORDER BY event_id, model_version)) FROM predictions t",
}
CONTENT_DIGEST = {
    "processed_data": "SELECT md5(string_agg((t.event_id, t.ts_utc, t.f1, t.f2, t.f3, "
    "t.f1_z, t.f2_z, t.f3_z, t.f1_imputed, t.f2_imputed, t.f3_imputed, "
    "t.normalized_with, t.interval_start, t.interval_end)::text, "
    "'|' ORDER BY event_id)) FROM processed_data t",
    "predictions": "SELECT md5(string_agg((t.event_id, t.model_version, t.y_hat, t.ts_utc)::text, '|' "
    "ORDER BY event_id, model_version)) FROM predictions t",
}


# dag.test() keeps a run_conf on the DAG object for later runs: every pipeline run states all its params
PIPELINE_PARAMS = {
    "simulated_events": 200,
    "normalization": "model",
    "shard_size": 1_000_000,
    "batch_size": None,
    "accept_smaller_source": False,
}


def run(dag: Any, logical_date: datetime, **conf: Any) -> Any:
    params = {**PIPELINE_PARAMS, **conf} if dag.dag_id == PIPELINE else conf
    dag_run = dag.test(logical_date=logical_date, run_conf=params or None)
    assert dag_run.state == "success", f"{dag.dag_id} run ended {dag_run.state}"
    return dag_run


def digests(conn: psycopg.Connection[Any], queries: dict[str, str]) -> dict[str, str]:
    return {table: str(conn.execute(q).fetchone()[0]) for table, q in queries.items()}  # type: ignore[index]


PUSHED_KEYS = ("return_value", "run")  # "run": extract's metadata; its return value is the shard list


def xcom_values(dag_id: str, run_id: str) -> dict[str, Any]:
    """The run's return values, named ``task`` (``task[i]`` for map index i), and the other XComs
    pushed by key, named ``task.key`` (not those TaskFlow splits a returned dict into)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key.in_(PUSHED_KEYS)
            )
        ).all()
    values = {}
    for task_id, map_index, key, value in rows:
        name = task_id if map_index < 0 else f"{task_id}[{map_index}]"
        name += "" if key == "return_value" else f".{key}"
        values[name] = json.loads(value) if isinstance(value, str | bytes) else value
    return values


def test_init_schema_migrates_a_fresh_warehouse_and_is_idempotent(
    dags: dict[str, Any], fresh_warehouse: str
) -> None:
    run(dags["00_init_schema"], LOGICAL)
    run(dags["00_init_schema"], datetime(2026, 11, 25, 18, 20, tzinfo=UTC))
    with psycopg.connect(fresh_warehouse) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(schema.available()),)
        assert conn.execute(
            "SELECT model_version FROM model_aliases WHERE alias = 'champion'"
        ).fetchone() == ("baseline_v1",)


def test_pipeline_run_stores_every_event_and_its_prediction(
    dags: dict[str, Any], conn: psycopg.Connection[Any]
) -> None:
    dag_run = run(dags[PIPELINE], LOGICAL)
    assert dag_run.data_interval_start == START
    processed = conn.execute(
        "SELECT count(*), count(DISTINCT event_id), min(ts_utc) >= %(s)s AND max(ts_utc) < %(e)s, "
        "bool_and(interval_start = %(s)s AND interval_end = %(e)s), "
        "bool_and(normalized_with = 'baseline_v1') "
        "FROM processed_data",
        {"s": START, "e": LOGICAL},
    ).fetchone()
    assert processed == (200, 200, True, True, True)
    predictions = conn.execute(
        "SELECT count(*), min(model_version), max(model_version), min(written_by_run), max(written_by_run) "
        "FROM predictions"
    ).fetchone()
    ref = f"{PIPELINE}/{dag_run.run_id}"
    assert predictions == (200, "baseline_v1", "baseline_v1", ref, ref)


def test_every_stored_y_hat_equals_the_formula_recomputed_in_sql(
    dags: dict[str, Any], conn: psycopg.Connection[Any]
) -> None:
    run(dags[PIPELINE], LOGICAL)
    compared = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE p.y_hat = 0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z) "
        "FROM predictions p JOIN processed_data d USING (event_id)"
    ).fetchone()
    assert compared == (200, 200)
    # the z-scores themselves are the stored statistics applied to the (imputed) raw values
    wrong_z = conn.execute(
        "SELECT count(*) FROM processed_data WHERE abs(f1_z - (f1 - 10) / 2) > 1e-12 "
        "OR abs(f3_z - (f3 - 100) / 10) > 1e-12 OR (f2 IS NULL) <> f2_imputed "
        "OR (f2_imputed AND f2_z <> 0) OR (NOT f2_imputed AND abs(f2_z - f2) > 1e-12)"
    ).fetchone()
    assert wrong_z == (0,)


def test_xcom_carries_only_metadata(dags: dict[str, Any], conn: psycopg.Connection[Any]) -> None:
    dag_run = run(dags[PIPELINE], LOGICAL)
    values = xcom_values(PIPELINE, dag_run.run_id)
    # 200 events are one shard: the mapped tasks have one instance each
    assert set(values) == {
        "extract",
        "extract.run",
        "transform[0]",
        "load_processed",
        "predict[0]",
        "store_predictions[0]",
    }
    for task_id, value in values.items():
        assert len(json.dumps(value)) < 1200, f"{task_id} pushed {value!r}"
    [shard] = values["extract"]
    assert shard["rows"] == 200
    # the run's own folder under its interval's: <dag>/<interval>/<run id, path-safe>-<hash>/
    folder, name = shard["path"].rsplit("/", 1)
    assert name == "events-001-of-001.parquet"
    assert folder.rsplit("/", 2)[1] == "20261125T180000Z_20261125T181000Z"
    assert folder.rsplit("/", 1)[1].startswith(dag_run.run_id.replace(":", "_").replace("+", "_"))
    assert "shards" not in values["extract.run"]  # the return value carries them, once
    assert values["extract.run"]["model_version"] == "baseline_v1"
    assert len(values["transform[0]"]["sha256"]) == 64
    assert values["predict[0]"]["model_version"] == "baseline_v1"
    assert values["predict[0]"]["challenger"] is None
    assert [f["model_version"] for f in values["predict[0]"]["files"]] == ["baseline_v1"]
    assert values["store_predictions[0]"]["by_version"]["baseline_v1"]["inserted"] == 200


def test_same_interval_twice_and_cleared_rerun_leave_byte_identical_tables(
    dags: dict[str, Any], conn: psycopg.Connection[Any]
) -> None:
    run(dags[PIPELINE], LOGICAL)
    first = digests(conn, FULL_DIGEST)
    # another run (another run_id) whose data interval is the same [18:00, 18:10)
    other = run(dags[PIPELINE], datetime(2026, 11, 25, 18, 15, tzinfo=UTC))
    assert other.data_interval_start == START
    assert digests(conn, FULL_DIGEST) == first
    # dag.test on the same logical date clears the run's task instances and runs them again
    run(dags[PIPELINE], LOGICAL)
    assert digests(conn, FULL_DIGEST) == first
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM processed_data), (SELECT count(*) FROM predictions)"
    ).fetchone()
    assert counts == (200, 200)


def test_rerun_repairs_damaged_rows(dags: dict[str, Any], conn: psycopg.Connection[Any]) -> None:
    run(dags[PIPELINE], LOGICAL)
    good = digests(conn, CONTENT_DIGEST)
    conn.execute(
        "UPDATE processed_data SET f1 = -1 WHERE event_id IN (SELECT event_id FROM processed_data LIMIT 5)"
    )
    conn.execute("DELETE FROM predictions WHERE event_id IN (SELECT event_id FROM predictions LIMIT 10)")
    conn.commit()
    assert digests(conn, CONTENT_DIGEST) != good
    run(dags[PIPELINE], LOGICAL)
    assert digests(conn, CONTENT_DIGEST) == good


def test_smaller_batch_replaces_the_interval_and_batch_normalization_is_marked(
    dags: dict[str, Any], conn: psycopg.Connection[Any]
) -> None:
    run(dags[PIPELINE], LOGICAL)
    run(dags[PIPELINE], LOGICAL, simulated_events=50, normalization="batch")
    summary = conn.execute(
        "SELECT count(*), bool_and(normalized_with = 'batch'), abs(avg(f1_z)) < 1e-9 FROM processed_data"
    ).fetchone()
    assert summary == (50, True, True)
    compared = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE p.y_hat = 0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z) "
        "FROM predictions p JOIN processed_data d USING (event_id)"
    ).fetchone()
    assert compared == (50, 50)


@pytest.mark.parametrize("normalization", ["model", "batch"])
def test_a_sharded_run_stores_exactly_what_an_unsharded_one_does(
    dags: dict[str, Any], conn: psycopg.Connection[Any], normalization: str
) -> None:
    run(dags[PIPELINE], LOGICAL, normalization=normalization)
    unsharded_content, unsharded_full = digests(conn, CONTENT_DIGEST), digests(conn, FULL_DIGEST)
    audit = "SELECT extracted, loaded, rejected, deduplicated, gate FROM run_audit"
    unsharded_audit = conn.execute(audit).fetchall()

    # a rerun of the interval in 3 shards changes no row, not even a timestamp
    dag_run = run(dags[PIPELINE], LOGICAL, normalization=normalization, shard_size=70)
    assert digests(conn, FULL_DIGEST) == unsharded_full
    mapped: dict[str, list[int]] = {}
    for ti in dag_run.get_task_instances():
        mapped.setdefault(ti.task_id, []).append(ti.map_index)
        assert ti.state == "success", ti
    assert {t: sorted(i) for t, i in mapped.items()} == {
        "wait_for_window": [-1],
        "extract": [-1],
        "transform": [0, 1, 2],
        "load_processed": [-1],
        "predict": [0, 1, 2],
        "store_predictions": [0, 1, 2],
    }

    # and into empty tables, 3 shards write the same rows as one
    conn.execute("TRUNCATE processed_data, predictions, rejected_events, run_audit")
    conn.commit()
    run(dags[PIPELINE], LOGICAL, normalization=normalization, shard_size=70)
    assert digests(conn, CONTENT_DIGEST) == unsharded_content
    assert conn.execute(audit).fetchall() == unsharded_audit == [(200, 200, 0, 0, "passed")]


def test_the_deprecated_batch_size_param_is_still_obeyed_with_a_warning(
    dags: dict[str, Any], conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="etlml.steps.run"):
        run(dags[PIPELINE], LOGICAL, batch_size=50)
    assert conn.execute("SELECT count(*) FROM processed_data").fetchone() == (50,)
    warnings = [r.getMessage() for r in caplog.records if r.name == "etlml.steps.run"]
    assert any("batch_size is deprecated" in w and "simulated_events=50" in w for w in warnings), warnings
