"""DAG 40_train_challenger under dag.test(): it trains a version on labelled events and shadows it, and
the next pipeline run scores it beside the champion; as the Compose pipeline role it needs the owner's
connection `warehouse_registry`."""

from pathlib import Path
from typing import Any

import psycopg
import pytest

from etlml.models import registry
from etlml.steps import train_challenger
from tests.conftest import url_for
from tests.dags.test_dag_runs import LOGICAL, PIPELINE, run
from tests.labelled_events import interval, load_intervals

pytestmark = [pytest.mark.airflow, pytest.mark.db]

DAG = "40_train_challenger"
CONF = {
    "name": "v2",
    "estimator": "ridge",
    "from": interval(0).start.isoformat(),
    "to": interval(4).start.isoformat(),
    "description": "ridge on the first four intervals",
}


@pytest.fixture
def labelled(fresh_migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ETLML_STORAGE_ROOT", tmp_path.as_uri())
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        load_intervals(conn, 0, 4)
        yield conn


def test_it_trains_and_shadows_and_the_next_run_scores_the_challenger(
    dags: dict[str, Any], labelled: Any
) -> None:
    dag_run = dags[DAG].test(run_conf=CONF)
    assert dag_run.state == "success"
    shown = registry.show(labelled, "v2")
    assert (shown["kind"], shown["params"]["estimator"], shown["description"]) == (
        "sklearn",
        "ridge",
        CONF["description"],
    )
    assert shown["training_from"] == interval(0).start and shown["validation_metrics"]["n"] == 120
    assert registry.aliases(labelled) == {"champion": "baseline_v1", "challenger": "v2"}
    [register, fit, shadow] = registry.events(labelled)[-3:]
    assert (register["event"], fit["event"], shadow["event"]) == ("register", "fit_estimator", "shadow")
    assert shadow["actor"] == f"{DAG}/{dag_run.run_id}"
    run(dags[PIPELINE], LOGICAL)
    stored = labelled.execute(
        "SELECT model_version, count(*) FROM predictions GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert stored == [("baseline_v1", 200), ("v2", 200)]
    # a retry of either task finds its work done; another estimator under the same name is refused
    again = train_challenger.train(
        "t/r", "v2", estimator="ridge", start=interval(0).start, end=interval(4).start
    )
    assert again.validation_metrics == shown["validation_metrics"]
    assert train_challenger.shadow("t/r", again) == "v2"
    with pytest.raises(Exception, match="already registered, not as hist_gradient_boosting"):
        train_challenger.train(
            "t/r", "v2", estimator="hist_gradient_boosting", start=interval(0).start, end=interval(4).start
        )
    # migration's register + promote, then the DAG's register, fit_estimator and shadow; a retry adds none
    assert len(registry.events(labelled)) == 5


def test_too_few_labels_fail_the_run_and_register_nothing(dags: dict[str, Any], labelled: Any) -> None:
    conf = {**CONF, "from": interval(10).start.isoformat(), "to": interval(12).start.isoformat()}
    dag_run = dags[DAG].test(run_conf=conf)
    assert dag_run.state == "failed"
    assert [v["model_version"] for v in registry.list_versions(labelled)] == ["baseline_v1"]
    with pytest.raises(Exception, match=r"only 0 labelled processed events .* at least 100"):
        train_challenger.train(
            "t/r", "v2", estimator="ridge", start=interval(10).start, end=interval(12).start
        )


def test_as_the_pipeline_role_it_needs_the_owners_registry_connection(
    dags: dict[str, Any],
    labelled: Any,
    fresh_migrated: str,
    pipeline_role: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role, _ = pipeline_role  # the `warehouse` connection now logs in as the Compose pipeline role
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE_REGISTRY", raising=False)
    with pytest.raises(
        Exception, match=f"role '{role}' may not change the model registry.*warehouse_registry"
    ):
        train_challenger.train("t/r", "v2", estimator="ridge", start=interval(0).start, end=interval(4).start)
    assert dags[DAG].test(run_conf=CONF).state == "failed"
    assert registry.list_versions(labelled)[-1]["model_version"] == "baseline_v1"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_REGISTRY",
        url_for(psycopg.conninfo.conninfo_to_dict(fresh_migrated)["dbname"]),
    )
    assert dags[DAG].test(run_conf=CONF).state == "success"
    assert registry.aliases(labelled)["challenger"] == "v2"
