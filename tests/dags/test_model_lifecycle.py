"""Champion and challenger in one run, rollback, rescoring and a promotion during a run, under dag.test()."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etlml.features.stats import FeatureStats
from etlml.interval import Interval
from etlml.models import registry
from etlml.steps.extract import extract
from etlml.steps.load_processed import load_processed
from etlml.steps.predict import predict
from etlml.steps.rescore import rescore
from etlml.steps.run import RunContext
from etlml.steps.store_predictions import store_predictions
from etlml.steps.transform import transform
from tests.dags.test_dag_runs import CONTENT_DIGEST, FULL_DIGEST, LOGICAL, PIPELINE, digests, run
from tests.helpers import register_sklearn

pytestmark = [pytest.mark.airflow, pytest.mark.db]

# v2 has statistics of its own, so its z-scores differ from the champion's
V2_STATS = {
    "f1": FeatureStats(9, 3),
    "f2": FeatureStats(0.5, 2),
    "f3": FeatureStats(95, 12),
}
V2_FORMULA = " + ".join(
    [
        "0.5 * (coalesce(d.f1, 9) - 9) / 3",
        "0.1 * (coalesce(d.f2, 0.5) - 0.5) / 2",
        "0.4 * (coalesce(d.f3, 95) - 95) / 12",
    ]
)
BASELINE_FORMULA = "0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z"


@pytest.fixture
def reg(fresh_migrated: str) -> Any:
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        registry.register_linear(
            conn, "v2", coef={"f1": 0.5, "f2": 0.1, "f3": 0.4}, stats=V2_STATS, actor="t"
        )
        yield conn


def mismatches(conn: psycopg.Connection[Any], version: str, formula: str) -> tuple[int, int]:
    row = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE abs(p.y_hat - ({formula})) > 1e-12) "
        "FROM predictions p JOIN processed_data d USING (event_id) WHERE p.model_version = %s",
        (version,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_champion_and_challenger_are_both_stored_in_one_run(dags: dict[str, Any], reg: Any) -> None:
    registry.shadow(reg, "v2", "t")
    run(dags[PIPELINE], LOGICAL)
    assert mismatches(reg, "baseline_v1", BASELINE_FORMULA) == (200, 0)
    assert mismatches(reg, "v2", V2_FORMULA) == (200, 0)
    same_events = reg.execute(
        "SELECT count(*) FROM predictions a JOIN predictions b USING (event_id) "
        "WHERE a.model_version = 'baseline_v1' AND b.model_version = 'v2'"
    ).fetchone()
    assert same_events == (200,)


def test_a_sklearn_challenger_scores_beside_the_champion(
    dags: dict[str, Any], reg: Any, tmp_path: Path
) -> None:
    register_sklearn(reg, "sk1", tmp_path, tmp_path.as_uri(), V2_STATS)
    registry.shadow(reg, "sk1", "t")
    run(dags[PIPELINE], LOGICAL)
    assert (
        mismatches(reg, "sk1", "2.0 + 1.0 * coalesce(d.f1, 9) - 1.0 * coalesce(d.f2, 0.5) + 0.5 * d.f3")[0]
        == 200
    )
    worst = reg.execute(
        "SELECT max(abs(p.y_hat - (2.0 + coalesce(d.f1, 9) - coalesce(d.f2, 0.5) + 0.5 * d.f3))) "
        "FROM predictions p JOIN processed_data d USING (event_id) WHERE p.model_version = 'sk1'"
    ).fetchone()
    assert worst is not None and worst[0] < 1e-9


def test_rollback_then_rerun_gives_the_old_champions_rows(dags: dict[str, Any], reg: Any) -> None:
    run(dags[PIPELINE], LOGICAL)
    baseline = digests(reg, CONTENT_DIGEST)
    registry.promote(reg, "v2", "t")
    run(dags[PIPELINE], LOGICAL)
    assert reg.execute("SELECT DISTINCT normalized_with FROM processed_data").fetchall() == [("v2",)]
    assert mismatches(reg, "v2", V2_FORMULA) == (200, 0)
    registry.rollback(reg, "t")
    run(dags[PIPELINE], LOGICAL)
    reg.execute("DELETE FROM predictions WHERE model_version = 'v2'")  # v2's rows stay; compare the rest
    assert digests(reg, CONTENT_DIGEST) == baseline


def test_rescoring_a_window_twice_gives_identical_rows(dags: dict[str, Any], reg: Any) -> None:
    run(dags[PIPELINE], LOGICAL)
    run(dags[PIPELINE], LOGICAL + timedelta(minutes=10))
    conf = {
        "model_version": "v2",
        "from": (LOGICAL - timedelta(minutes=10)).isoformat(),
        "to": (LOGICAL + timedelta(minutes=10)).isoformat(),
        "chunk_size": 150,
    }
    first = dags["20_rescore"].test(run_conf=conf)
    assert first.state == "success"
    assert mismatches(reg, "v2", V2_FORMULA) == (400, 0)
    before = digests(reg, FULL_DIGEST)
    second = dags["20_rescore"].test(run_conf=conf)
    assert second.state == "success"
    assert digests(reg, FULL_DIGEST) == before
    assert reg.execute("SELECT count(*) FROM predictions WHERE model_version = 'baseline_v1'").fetchone() == (
        400,
    )


def test_rescore_counts_its_chunks_and_refuses_an_empty_window(reg: Any) -> None:
    end = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(Exception, match="'from' must be < 'to'"):
        rescore("t/r", "v2", end, end, 10)
    assert rescore("t/r", "v2", end - timedelta(days=1), end, 10).chunks == 0


def test_a_promotion_during_a_run_does_not_mix_versions(reg: Any) -> None:
    ctx = RunContext(PIPELINE, "manual__promotion", Interval(LOGICAL - timedelta(minutes=10), LOGICAL))
    extracted = extract(ctx, simulated_events=50)  # the run reads the aliases here, once
    plan = extracted.plan
    processed = [transform(ctx, plan, shard) for shard in extracted.shards]
    registry.promote(reg, "v2", "someone-else")
    loaded = load_processed(ctx, plan, processed)
    [stored] = [store_predictions(ctx, predict(ctx, plan, shard, loaded.ref)) for shard in processed]
    assert [(f.model_version, f.role) for f, _ in stored.stored] == [("baseline_v1", "champion")]
    assert reg.execute("SELECT DISTINCT model_version FROM predictions").fetchall() == [("baseline_v1",)]
    assert reg.execute("SELECT DISTINCT normalized_with FROM processed_data").fetchall() == [("baseline_v1",)]


@pytest.mark.parametrize("normalization", ["model", "batch"])
def test_a_sharded_run_with_an_sklearn_champion_stores_what_an_unsharded_one_does(
    dags: dict[str, Any], reg: Any, tmp_path: Path, normalization: str
) -> None:
    """Sharding was checked only with linear versions: here an sklearn champion (its artifact loaded
    and verified by each mapped predict) and a linear challenger."""
    register_sklearn(
        reg, "sk1", tmp_path, tmp_path.as_uri(), V2_STATS, seed=2, weights=(0.7, -0.3, 0.05), intercept=1.0
    )
    registry.promote(reg, "sk1", "t")
    registry.shadow(reg, "v2", "t")
    run(dags[PIPELINE], LOGICAL, normalization=normalization)
    unsharded_content, unsharded_full = digests(reg, CONTENT_DIGEST), digests(reg, FULL_DIGEST)
    versions = "SELECT model_version, count(*) FROM predictions GROUP BY 1 ORDER BY 1"
    assert reg.execute(versions).fetchall() == [("sk1", 200), ("v2", 200)]

    sharded = run(dags[PIPELINE], LOGICAL, normalization=normalization, shard_size=70)
    assert sorted(ti.map_index for ti in sharded.get_task_instances() if ti.task_id == "predict") == [0, 1, 2]
    assert digests(reg, FULL_DIGEST) == unsharded_full  # a rerun in 3 shards changes no row

    reg.execute("TRUNCATE processed_data, predictions, rejected_events, run_audit")
    run(dags[PIPELINE], LOGICAL, normalization=normalization, shard_size=70)
    assert digests(reg, CONTENT_DIGEST) == unsharded_content  # into empty tables, the same rows
    assert reg.execute(versions).fetchall() == [("sk1", 200), ("v2", 200)]
