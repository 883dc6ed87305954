"""The model registry: immutable versions, champion/challenger aliases, rollback, audit trail, artifacts."""

import hashlib
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import psycopg
import pytest
import skops.io
from psycopg.types.json import Jsonb
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from etlml.errors import ModelError
from etlml.features import transform
from etlml.features.stats import FeatureStats, stats_json
from etlml.ingest.simulator import SimulatedSource
from etlml.interval import Interval
from etlml.models import artifacts, loader, registry, serving
from etlml.warehouse import writes

pytestmark = pytest.mark.db

STATS = {"f1": FeatureStats(10, 2), "f2": FeatureStats(0, 1), "f3": FeatureStats(100, 10)}
COEF = {"f1": 0.5, "f2": 0.1, "f3": 0.4}


@pytest.fixture
def reg(fresh_migrated: str) -> Any:
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        yield conn


def register(conn: psycopg.Connection[Any], version: str, **overrides: Any) -> None:
    registry.register_linear(conn, version, coef=COEF, stats=STATS, actor="tester", **overrides)


def sklearn_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal([10, 0, 100], [2, 1, 10], size=(200, 3))
    estimator = make_pipeline(StandardScaler(), LinearRegression()).fit(x, x @ [0.1, 0.2, 0.03])
    path = tmp_path / "model.skops"
    skops.io.dump(estimator, path)
    return path


def register_sklearn(conn: psycopg.Connection[Any], version: str, tmp_path: Path) -> None:
    registry.register_sklearn(
        conn,
        version,
        artifact_path=str(sklearn_file(tmp_path)),
        stats=STATS,
        storage_root=tmp_path.as_uri(),
        actor="t",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("f1=0.3,f2=0.2", "missing"),
        ("f1=0.3,f2=0.2,f3=x", "not a number"),
        ("f1=0.3,f2=0.2,f3=inf", "not finite"),
        ("f1=0.3,f2=0.2,f3=0.5,f4=1", "FEATURE=NUMBER"),
        ("f1=0.3,f1=0.2,f2=0.1,f3=0.5", "twice"),
        ("f1 0.3", "FEATURE=NUMBER"),
    ],
)
def test_invalid_coefficients_are_refused(text: str, message: str) -> None:
    with pytest.raises(registry.RegistryError, match=message):
        registry.parse_coefficients(text)


def test_coefficients_parse() -> None:
    assert registry.parse_coefficients(" f3=0.5, f1=0.3 ,f2=-2e-1") == {"f1": 0.3, "f2": -0.2, "f3": 0.5}


def test_register_promote_shadow_rollback_with_audit(reg: psycopg.Connection[Any]) -> None:
    register(reg, "v2")
    register(reg, "v3", intercept=1.0)
    registry.shadow(reg, "v2", "alice")
    assert registry.aliases(reg) == {"champion": "baseline_v1", "challenger": "v2"}
    assert registry.promote(reg, "v2", "bob") == "baseline_v1"
    assert registry.aliases(reg) == {"champion": "v2"}  # a promoted challenger stops shadowing
    registry.promote(reg, "v3", "bob")
    assert registry.rollback(reg, "carol") == ("v3", "v2")
    assert registry.rollback(reg, "carol") == ("v2", "baseline_v1")
    with pytest.raises(registry.RegistryError, match="no previous champion"):
        registry.rollback(reg, "carol")
    trail = [
        (e["event"], e["model_version"], e["previous_version"], e["actor"]) for e in registry.events(reg)
    ]
    assert trail == [
        ("register", "baseline_v1", None, "migration 0002"),
        ("promote", "baseline_v1", None, "migration 0002"),
        ("register", "v2", None, "tester"),
        ("register", "v3", None, "tester"),
        ("shadow", "v2", None, "alice"),
        ("promote", "v2", "baseline_v1", "bob"),
        ("unshadow", None, "v2", "bob"),
        ("promote", "v3", "v2", "bob"),
        ("rollback", "v2", "v3", "carol"),
        ("rollback", "baseline_v1", "v2", "carol"),
    ]


def test_audit_trail_and_versions_cannot_be_changed(reg: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        reg.execute("DELETE FROM model_events")
    reg.rollback()
    register(reg, "v2")
    with pytest.raises(registry.RegistryError, match="immutable"):
        register(reg, "v2", intercept=5.0)
    assert registry.show(reg, "v2")["params"]["intercept"] == 0.0


def test_unknown_versions_and_bad_alias_moves_are_refused(reg: psycopg.Connection[Any]) -> None:
    with pytest.raises(ModelError, match="not registered"):
        registry.promote(reg, "nope", "x")
    with pytest.raises(ModelError, match="not registered"):
        registry.shadow(reg, "nope", "x")
    with pytest.raises(registry.RegistryError, match="already the champion"):
        registry.promote(reg, "baseline_v1", "x")
    with pytest.raises(registry.RegistryError, match="is the champion"):
        registry.shadow(reg, "baseline_v1", "x")
    with pytest.raises(registry.RegistryError, match="no challenger"):
        registry.shadow(reg, None, "x")
    assert [e["event"] for e in registry.events(reg)] == ["register", "promote"]


def test_statistics_fitted_from_a_window(reg: psycopg.Connection[Any]) -> None:
    start = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    interval = Interval(start, start + timedelta(minutes=10))
    frame = transform.normalize(transform.clean(SimulatedSource(3, 500).events(interval)), STATS)
    writes.upsert_processed(reg, frame, interval, "baseline_v1")
    fitted = registry.fit_stats(reg, interval.start, interval.end)
    assert fitted["f1"].mean == pytest.approx(frame["f1"].mean(), rel=1e-12)
    assert fitted["f2"].std == pytest.approx(frame["f2"].std(ddof=1), rel=1e-12)  # NULLs left out
    with pytest.raises(registry.RegistryError, match="too few"):
        registry.fit_stats(reg, interval.end, interval.end + timedelta(hours=1))


def test_sklearn_artifact_is_stored_checked_and_scores(reg: psycopg.Connection[Any], tmp_path: Path) -> None:
    register_sklearn(reg, "sk1", tmp_path)
    record = registry.show(reg, "sk1")
    assert record["artifact_uri"].endswith("/+models/sk1/model.skops")
    assert len(record["artifact_sha256"]) == 64
    scorer = loader.load(reg, "sk1")
    frame = pd_frame([[12.0, None, 110.0]])
    y = scorer.predict(frame, use_stored_z=False)
    assert y == pytest.approx([12.0 * 0.1 + 0.0 * 0.2 + 110.0 * 0.03], rel=1e-9)  # f2 imputed with its mean 0


def test_a_tampered_artifact_is_refused(reg: psycopg.Connection[Any], tmp_path: Path) -> None:
    register_sklearn(reg, "sk1", tmp_path)
    stored = Path(registry.show(reg, "sk1")["artifact_uri"].removeprefix("file://"))
    stored.write_bytes(stored.read_bytes() + b"\0")
    with pytest.raises(artifacts.UntrustedArtifactError, match="changed after registration"):
        loader.load(reg, "sk1")
    with pytest.raises(artifacts.UntrustedArtifactError):
        registry.promote(reg, "sk1", "t")
    assert serving.resolve(reg).champion == "baseline_v1"


def test_pickle_and_untrusted_types_are_refused(reg: psycopg.Connection[Any], tmp_path: Path) -> None:
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(LinearRegression()))
    with pytest.raises(artifacts.UntrustedArtifactError, match="pickle and joblib files are refused"):
        registry.register_sklearn(
            reg,
            "sk_pickle",
            artifact_path=str(pickled),
            stats=STATS,
            storage_root=tmp_path.as_uri(),
            actor="t",
        )
    untrusted = tmp_path / "untrusted.skops"
    skops.io.dump({"model": Path("/etc")}, untrusted)
    with pytest.raises(artifacts.UntrustedArtifactError, match="does not trust"):
        registry.register_sklearn(
            reg,
            "sk_untrusted",
            artifact_path=str(untrusted),
            stats=STATS,
            storage_root=tmp_path.as_uri(),
            actor="t",
        )
    assert [v["model_version"] for v in registry.list_versions(reg)] == ["baseline_v1"]


def pd_frame(rows: list[list[float | None]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=["f1", "f2", "f3"], dtype="float64")


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


BAD_NAMES = ["../escape", "../../../x", "x/../sk1", "sk1/", "", ".hidden", "-v", "sk 1", "v" * 65, "v\n"]


@pytest.mark.parametrize("name", [*BAD_NAMES, "ABSOLUTE"])
def test_a_bad_version_name_is_refused_before_anything_is_written(
    reg: psycopg.Connection[Any], tmp_path: Path, name: str
) -> None:
    """``../escape``, an absolute path and ``x/../sk1`` wrote model.skops outside <root>/models/ (or
    over a registered artifact) before the database refused the row; now nothing is written."""
    root, source = tmp_path / "root", sklearn_file(tmp_path)
    registry.register_sklearn(  # a registered artifact under the same root, which must stay intact
        reg, "sk1", artifact_path=str(source), stats=STATS, storage_root=root.as_uri(), actor="t"
    )
    skops.io.dump(LinearRegression().fit([[0, 0, 1], [1, 1, 0]], [0, 1]), source)  # another estimator
    stored = registry.show(reg, "sk1")
    name = str(tmp_path / "abs") if name == "ABSOLUTE" else name
    before = {p: p.read_bytes() for p in files_under(tmp_path)}
    with pytest.raises(registry.RegistryError, match=r"^model version .* is not a valid name: use 1 to 64"):
        registry.register_sklearn(
            reg, name, artifact_path=str(source), stats=STATS, storage_root=root.as_uri(), actor="t"
        )
    with pytest.raises(registry.RegistryError, match="is not a valid name"):
        register(reg, name)
    assert {p: p.read_bytes() for p in files_under(tmp_path)} == before
    assert [v["model_version"] for v in registry.list_versions(reg)] == ["baseline_v1", "sk1"]
    assert registry.verify(reg, "sk1").artifact_sha256 == stored["artifact_sha256"]
    assert [e["event"] for e in registry.events(reg)] == ["register", "promote", "register"]


def test_artifacts_live_where_no_run_folder_can_be(reg: psycopg.Connection[Any], tmp_path: Path) -> None:
    """Run folders are <root>/<dag_id>/<interval>/; the artifacts' folder is a name no dag_id can take."""
    from airflow.sdk.definitions._internal.node import KEY_REGEX

    register_sklearn(reg, "sk1", tmp_path)
    uri = registry.show(reg, "sk1")["artifact_uri"]
    relative = PurePosixPath(uri.removeprefix(tmp_path.as_uri() + "/"))
    assert relative.parts[1:] == ("sk1", "model.skops")
    assert KEY_REGEX.match(relative.parts[0]) is None  # Airflow refuses it as a dag_id
    assert Path(uri.removeprefix("file://")).is_file()


def test_an_artifact_registered_under_the_old_location_still_loads(
    reg: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Versions registered before the artifacts moved keep their stored path (model_versions.artifact_uri)."""
    source = sklearn_file(tmp_path)
    old = tmp_path / "models" / "sk_old" / "model.skops"
    old.parent.mkdir(parents=True)
    old.write_bytes(source.read_bytes())
    sha256 = hashlib.sha256(old.read_bytes()).hexdigest()
    reg.execute(
        "INSERT INTO model_versions (model_version, kind, params, feature_stats, artifact_uri, "
        "artifact_sha256) VALUES ('sk_old', 'sklearn', %s, %s, %s, %s)",
        (Jsonb({"features": ["f1", "f2", "f3"]}), Jsonb(stats_json(STATS)), old.as_uri(), sha256),
    )
    assert registry.verify(reg, "sk_old").artifact_uri == old.as_uri()
    assert loader.load(reg, "sk_old").predict(pd_frame([[12.0, 0.0, 110.0]]), use_stored_z=False) == (
        pytest.approx([12.0 * 0.1 + 110.0 * 0.03], rel=1e-9)
    )


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE model_events",
        "TRUNCATE model_events CASCADE",
        # every table with a foreign key to model_versions named, so only the triggers can refuse
        "TRUNCATE model_versions, model_aliases, model_events, model_performance, feature_drift, "
        "model_comparisons",
        "TRUNCATE model_versions CASCADE",
        "TRUNCATE model_aliases, model_versions, model_events RESTART IDENTITY CASCADE",
    ],
)
def test_truncate_cannot_empty_the_registry_or_its_audit_trail(
    reg: psycopg.Connection[Any], statement: str
) -> None:
    """Row-level triggers do not fire on TRUNCATE: it emptied model_events, and with CASCADE every
    version and alias. Statement-level triggers refuse it, even for the tables' owner."""
    register(reg, "v2")
    registry.shadow(reg, "v2", "alice")
    before = (registry.list_versions(reg), registry.aliases(reg), registry.events(reg))
    # without CASCADE, the foreign keys of the monitoring tables (0009) refuse it first
    refused = "cannot be truncated|referenced in a foreign key constraint"
    with pytest.raises((psycopg.errors.RaiseException, psycopg.errors.FeatureNotSupported), match=refused):
        reg.execute(statement)
    assert (registry.list_versions(reg), registry.aliases(reg), registry.events(reg)) == before


def test_a_rollback_to_the_challenger_stops_it_shadowing(reg: psycopg.Connection[Any]) -> None:
    """The champion and the challenger are never the same version, after a rollback too."""
    register(reg, "v2")
    registry.promote(reg, "v2", "bob")
    registry.shadow(reg, "baseline_v1", "alice")
    assert registry.rollback(reg, "carol") == ("v2", "baseline_v1")
    assert registry.aliases(reg) == {"champion": "baseline_v1"}
    assert [(e["event"], e["model_version"], e["previous_version"]) for e in registry.events(reg)][-2:] == [
        ("rollback", "baseline_v1", "v2"),
        ("unshadow", None, "baseline_v1"),
    ]
