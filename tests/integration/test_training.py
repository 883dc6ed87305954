"""Train, compare and promote on evidence against the real warehouse: stored events, labels, predictions."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from etlml import cli
from etlml.features.profile import check_profile, column_profile
from etlml.features.stats import FeatureStats
from etlml.models import comparison, evidence, fitting, loader, registry, training
from etlml.models.window import Window
from tests.labelled_events import interval, load_intervals, score

pytestmark = pytest.mark.db

# intervals 0-5 train, 6-8 are scored by the candidates (shadowing), all labelled
TRAIN = Window(interval(0).start, interval(6).start)
LATER = Window(interval(6).start, interval(9).start)
BASELINE = {"f1": 0.3, "f2": 0.2, "f3": 0.5}
BASELINE_STATS = {"f1": FeatureStats(10, 2), "f2": FeatureStats(0, 1), "f3": FeatureStats(100, 10)}


@pytest.fixture
def reg(fresh_migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ETLML_STORAGE_ROOT", tmp_path.as_uri())
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        load_intervals(conn, 0, 9)
        yield conn


def train_v2(conn: psycopg.Connection[Any], tmp_path: Path, version: str = "v2") -> fitting.Trained:
    return training.train(
        conn,
        version,
        estimator="hist_gradient_boosting",
        window=TRAIN,
        storage_root=tmp_path.as_uri(),
        actor="tester",
        description="boosted",
    )


def shadowed(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    """v2 trained and scored beside baseline_v1 on the later intervals, as a shadow would store it."""
    train_v2(conn, tmp_path)
    score("baseline_v1", 6, 9)
    score("v2", 6, 9)


def test_train_registers_the_version_with_its_training_evidence(reg: Any, tmp_path: Path) -> None:
    trained = train_v2(reg, tmp_path)
    row = reg.execute(
        "SELECT kind, params, feature_stats, reference_profile, training_from, training_to, "
        "validation_metrics FROM model_versions WHERE model_version = 'v2'"
    ).fetchone()
    kind, params, stats, profile, start, end, metrics = row
    assert (kind, params["estimator"], start, end) == (
        "sklearn",
        "hist_gradient_boosting",
        TRAIN.start,
        TRAIN.end,
    )
    labelled = reg.execute(
        "SELECT count(*), avg(d.f1), stddev_samp(d.f2), array_agg(d.f1 ORDER BY d.event_id) "
        "FROM processed_data d JOIN labels l USING (event_id) WHERE d.interval_start < %s",
        (TRAIN.end,),
    ).fetchone()
    assert labelled[0] == 6 * 150
    assert stats["f1"]["mean"] == pytest.approx(labelled[1], rel=1e-12)
    assert stats["f2"]["std"] == pytest.approx(labelled[2], rel=1e-12)
    check_profile(profile)
    assert profile["f1"] == column_profile(np.array(labelled[3], dtype=float))
    assert profile["score"]["n"] == 900
    assert metrics["n"] == 180 and metrics["n_fit"] == 720
    assert metrics == trained.validation_metrics
    # the holdout's events were the latest: the baseline's MAE on them, recomputed in SQL, is worse
    baseline_mae = reg.execute(
        "SELECT avg(abs(0.3 * d.f1_z + 0.2 * d.f2_z + 0.5 * d.f3_z - l.y_true)) FROM ("
        "  SELECT * FROM processed_data WHERE interval_start < %s"
        "  ORDER BY ts_utc DESC, event_id DESC LIMIT 180"
        ") d JOIN labels l USING (event_id)",
        (TRAIN.end,),
    ).fetchone()[0]
    assert metrics["mae"] < 0.7 * baseline_mae
    # the registered artifact loads (a boosted model holds TreePredictor) and scores what was profiled
    scorer = loader.load(reg, "v2")
    frame = training.labelled_events(reg, TRAIN)
    assert column_profile(scorer.predict(frame, use_stored_z=False)) == profile["score"]
    events = registry.events(reg)
    assert [(e["event"], e["model_version"], e["actor"]) for e in events[-2:]] == [
        ("register", "v2", "tester"),
        ("fit_estimator", "v2", "tester"),  # its error estimator, fitted on the holdout
    ]


def test_training_is_deterministic_given_the_data(reg: Any, tmp_path: Path) -> None:
    train_v2(reg, tmp_path, "v2")
    train_v2(reg, tmp_path, "v3")
    frame = training.labelled_events(reg, LATER)
    a, b = (loader.load(reg, v).predict(frame, use_stored_z=False) for v in ("v2", "v3"))
    assert np.array_equal(a, b)
    shown = [registry.show(reg, v)["validation_metrics"] for v in ("v2", "v3")]
    assert shown[0] == shown[1]


def test_too_few_labels_and_a_taken_name_are_refused_before_anything_is_stored(
    reg: Any, tmp_path: Path
) -> None:
    load_intervals(reg, 20, 21, events=60)  # one interval of 60 labelled events
    lonely = Window(interval(20).start, interval(21).start)
    with pytest.raises(fitting.TrainingError, match=r"only 60 labelled processed events .* at least 100"):
        training.train(reg, "v9", estimator="ridge", window=lonely, storage_root=tmp_path.as_uri(), actor="t")
    with pytest.raises(registry.RegistryError, match="already registered"):
        training.train(
            reg, "baseline_v1", estimator="ridge", window=TRAIN, storage_root=tmp_path.as_uri(), actor="t"
        )
    with pytest.raises(registry.RegistryError, match="not a valid name"):
        training.train(
            reg, "../x", estimator="ridge", window=TRAIN, storage_root=tmp_path.as_uri(), actor="t"
        )
    assert [v["model_version"] for v in registry.list_versions(reg)] == ["baseline_v1"]
    assert not (tmp_path / "+models").exists()


def test_compare_equals_a_numpy_recomputation_and_is_stored(reg: Any, tmp_path: Path) -> None:
    shadowed(reg, tmp_path)
    registry.shadow(reg, "v2", "t")
    found = comparison.compare(reg, None, LATER, actor="tester", samples=500, seed=3)
    rows = reg.execute(
        "SELECT l.y_true, c.y_hat, s.y_hat FROM labels l "
        "JOIN predictions c ON c.event_id = l.event_id AND c.model_version = 'baseline_v1' "
        "JOIN predictions s ON s.event_id = l.event_id AND s.model_version = 'v2' "
        "WHERE l.interval_start >= %s ORDER BY l.event_id",
        (LATER.start,),
    ).fetchall()
    y, champ, cand = np.array(rows).T
    got = found.evidence
    assert (found.champion, found.candidate, got.n) == ("baseline_v1", "v2", 450)
    assert got.champion_mae == pytest.approx(np.abs(champ - y).mean(), rel=1e-12)
    assert got.candidate_mae == pytest.approx(np.abs(cand - y).mean(), rel=1e-12)
    assert got.champion_rmse == pytest.approx(np.sqrt(((champ - y) ** 2).mean()), rel=1e-12)
    assert got.candidate_rmse == pytest.approx(np.sqrt(((cand - y) ** 2).mean()), rel=1e-12)
    diff = np.abs(cand - y) - np.abs(champ - y)
    assert got.mae_diff == pytest.approx(diff.mean(), rel=1e-12)
    assert (got.ci_low, got.ci_high) == evidence.paired_bootstrap(diff, 500, 3)
    assert got.ci_high is not None and got.ci_high < 0  # the boosted model is better
    again = comparison.compare(reg, "v2", LATER, actor="tester", samples=500, seed=3)
    assert again.evidence == got and again.comparison_id != found.comparison_id
    stored = reg.execute(
        "SELECT champion, candidate, window_from, window_to, n, champion_mae, candidate_mae, champion_rmse, "
        "candidate_rmse, mae_diff, ci_low, ci_high, bootstrap_samples, seed, actor FROM model_comparisons "
        "WHERE comparison_id = %s",
        (found.comparison_id,),
    ).fetchone()
    assert stored == (
        "baseline_v1", "v2", LATER.start, LATER.end, 450, got.champion_mae, got.candidate_mae,
        got.champion_rmse, got.candidate_rmse, got.mae_diff, got.ci_low, got.ci_high, 500, 3, "tester",
    )  # fmt: skip


def test_compare_without_predictions_or_labels_says_what_to_do(reg: Any, tmp_path: Path) -> None:
    train_v2(reg, tmp_path)
    score("baseline_v1", 6, 9)
    with pytest.raises(
        registry.RegistryError, match=r"'v2' has no stored predictions .* shadow it .* 20_rescore"
    ):
        comparison.compare(reg, "v2", LATER, actor="t")
    empty = Window(interval(30).start, interval(31).start)
    with pytest.raises(registry.RegistryError, match="no labelled events"):
        comparison.compare(reg, "v2", empty, actor="t")
    with pytest.raises(registry.RegistryError, match="no challenger is shadowing"):
        comparison.compare(reg, None, LATER, actor="t")
    with pytest.raises(registry.RegistryError, match="already the champion"):
        comparison.compare(reg, "baseline_v1", LATER, actor="t")
    assert reg.execute("SELECT count(*) FROM model_comparisons").fetchone() == (0,)


def register_linear(conn: Any, version: str, coef: dict[str, float]) -> None:
    registry.register_linear(conn, version, coef=coef, stats=BASELINE_STATS, actor="t")


def promote_events(conn: Any) -> list[tuple[str, str, dict[str, Any]]]:
    rows = conn.execute(
        "SELECT event, model_version, details FROM model_events WHERE event = 'promote' ORDER BY event_id"
    ).fetchall()
    return [(str(e), str(v), dict(d)) for e, v, d in rows]


def test_promote_if_better_refuses_worse_and_equal_versions_and_promotes_a_better_one(
    reg: Any, tmp_path: Path
) -> None:
    shadowed(reg, tmp_path)
    register_linear(reg, "worse", {"f1": 0.1, "f2": 0.2, "f3": 0.2})
    register_linear(reg, "same", BASELINE)
    score("worse", 6, 9)
    score("same", 6, 9)
    for version in ("worse", "same"):
        outcome = comparison.promote(reg, version, LATER, actor="t", if_better=True)
        assert not outcome.promoted and outcome.reason.startswith("not promoted")
        assert outcome.comparison.comparison_id is not None
    assert registry.aliases(reg)["champion"] == "baseline_v1"
    assert len(promote_events(reg)) == 1  # migration 0002's promotion of baseline_v1 only
    outcome = comparison.promote(reg, "v2", LATER, actor="t", if_better=True)
    assert outcome.promoted and "wholly below zero" in outcome.reason
    assert registry.aliases(reg)["champion"] == "v2"
    event, version, details = promote_events(reg)[-1]
    assert (event, version, details["rule"]) == ("promote", "v2", "if_better")
    stored = reg.execute(
        "SELECT n, ci_high, mae_diff FROM model_comparisons WHERE comparison_id = %s",
        (details["comparison_id"],),
    ).fetchone()
    assert stored == (
        details["evidence"]["n"],
        details["evidence"]["ci_high"],
        details["evidence"]["mae_diff"],
    )
    assert details["evidence"]["candidate"] == "v2" and details["evidence"]["ci_high"] < 0
    assert registry.rollback(reg, "t") == ("v2", "baseline_v1")  # rollback keeps working


def test_promote_without_if_better_stores_the_evidence_or_says_there_is_none(
    reg: Any, tmp_path: Path
) -> None:
    shadowed(reg, tmp_path)
    register_linear(reg, "unscored", {"f1": 0.5, "f2": 0.1, "f3": 0.4})
    outcome = comparison.promote(reg, "unscored", LATER, actor="t", if_better=False)
    assert outcome.promoted and outcome.reason.startswith("promoted: no labelled events")
    _, _, details = promote_events(reg)[-1]
    assert details["evidence"] is None and details["comparison_id"] is None
    registry.rollback(reg, "t")
    outcome = comparison.promote(reg, "v2", LATER, actor="t", if_better=False)
    _, version, details = promote_events(reg)[-1]
    assert version == "v2" and details["rule"] == "unconditional"
    assert details["evidence"]["n"] == 450 and details["comparison_id"] == outcome.comparison.comparison_id


def etlml(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_trains_compares_and_promotes_with_documented_exit_codes(
    reg: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    window = ["--from", TRAIN.start.isoformat(), "--to", TRAIN.end.isoformat()]
    code, out, err = etlml(
        capsys, "models", "train", "v2", "--estimator", "hist_gradient_boosting", *window, "--json"
    )
    assert code == 0, err
    assert "FutureWarning" not in err  # skops's look through Airflow's deprecated aliases stays quiet
    shown = json.loads(out)
    assert shown["model_version"] == "v2" and shown["validation_metrics"]["n"] == 180
    code, _, err = etlml(capsys, "models", "train", "v2", "--estimator", "ridge", *window)
    assert code == 2 and "already registered" in err
    with pytest.raises(SystemExit) as refused_choice:
        etlml(capsys, "models", "train", "v4", "--estimator", "svm", *window)
    assert refused_choice.value.code == 2 and "invalid choice: 'svm'" in capsys.readouterr().err
    later = ["--from", LATER.start.isoformat(), "--to", LATER.end.isoformat()]
    code, _, err = etlml(capsys, "models", "compare", "v2", *later)
    assert code == 2 and "has no stored predictions" in err and "shadow it" in err
    score("baseline_v1", 6, 9)
    score("v2", 6, 9)
    register_linear(reg, "worse", {"f1": 0.1, "f2": 0.2, "f3": 0.2})
    score("worse", 6, 9)
    code, out, _ = etlml(
        capsys, "models", "compare", "v2", *later, "--json", "--seed", "5", "--samples", "1000"
    )
    first = json.loads(out)
    assert code == 0 and first["candidate_better"] and (first["samples"], first["seed"]) == (1000, 5)
    code, out, _ = etlml(
        capsys, "models", "compare", "v2", *later, "--json", "--seed", "5", "--samples", "1000"
    )
    second = json.loads(out)
    assert second.pop("comparison_id") == first.pop("comparison_id") + 1 and second == first
    code, out, _ = etlml(capsys, "models", "compare", "worse", *later)
    assert code == 0 and any(line.split() == ["candidate_better", "False"] for line in out.splitlines())
    code, out, _ = etlml(capsys, "models", "promote", "worse", "--if-better", *later, "--json")
    refused = json.loads(out)
    assert code == cli.NOT_PROMOTED == 3
    assert (refused["promoted"], refused["champion"], refused["version"]) == (False, "baseline_v1", "worse")
    assert refused["reason"].startswith("not promoted: the 95% interval")
    code, out, _ = etlml(capsys, "models", "promote", "v2", "--if-better", *later)
    assert code == 0 and "promoted: the 95% interval" in out
    code, out, _ = etlml(capsys, "models", "list", "--json")
    assert {v["model_version"]: v["aliases"] for v in json.loads(out)}["v2"] == ["champion"]


def test_the_default_window_is_the_label_window_up_to_now(
    reg: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shadowed(reg, tmp_path)
    # the stored intervals lie in 2026-11-25; a window of the last 0.5 days before now has none of them
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", "0.5")
    code, _, err = etlml(capsys, "models", "compare", "v2")
    assert code == 2 and "no labelled events" in err
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", "0")
    code, _, err = etlml(capsys, "models", "compare", "v2")
    assert code == 2 and "ETLML_LABEL_WINDOW_DAYS must be more than 0" in err
    code, out, _ = etlml(capsys, "models", "compare", "v2", "--to", LATER.end.isoformat(), "--json")
    assert code == 2  # 0 days is refused even when --to is given, --from left to the default
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", "100000")
    code, out, err = etlml(capsys, "models", "compare", "v2", "--to", LATER.end.isoformat(), "--json")
    assert code == 2 and "ETLML_LABEL_WINDOW_DAYS must be a number" in err
    monkeypatch.setenv("ETLML_LABEL_WINDOW_DAYS", "3650")
    code, out, err = etlml(capsys, "models", "compare", "v2", "--to", LATER.end.isoformat(), "--json")
    assert code == 0, err
    assert json.loads(out)["n"] == 3 * 150  # only the later intervals have both versions' predictions


def test_too_few_paired_events_are_no_evidence_however_good_the_candidate(reg: Any) -> None:
    """An 'oracle' whose stored predictions equal the labels beats the champion on every event; on the
    20 events of one interval that is still no evidence (no interval), on 150 it is."""
    register_linear(reg, "oracle", {"f1": 0.5, "f2": 0.1, "f3": 0.4})
    load_intervals(reg, 40, 41, events=20)
    score("baseline_v1", 6, 7)
    score("baseline_v1", 40, 41)
    reg.execute(
        "INSERT INTO predictions (interval_start, event_id, model_version, y_hat, ts_utc, written_by_run) "
        "SELECT l.interval_start, l.event_id, 'oracle', l.y_true, d.ts_utc, 'test/oracle' FROM labels l "
        "JOIN processed_data d USING (interval_start, event_id) WHERE l.interval_start IN (%s, %s)",
        (interval(6).start, interval(40).start),
    )
    few = Window(interval(40).start, interval(41).start)
    with pytest.raises(evidence.InsufficientEvidenceError, match="the window has 20"):
        comparison.promote(reg, "oracle", few, actor="t", if_better=True)
    outcome = comparison.promote(reg, "oracle", few, actor="t", if_better=False)
    found = outcome.comparison.evidence
    assert (found.n, found.candidate_mae, found.ci_high) == (20, 0.0, None)
    assert found.mae_diff is not None and found.mae_diff < 0
    assert not found.candidate_better and f"fewer than {evidence.MIN_PAIRED}" in outcome.reason
    registry.rollback(reg, "t")
    enough = Window(interval(6).start, interval(7).start)
    promoted = comparison.promote(reg, "oracle", enough, actor="t", if_better=True)
    assert promoted.promoted and promoted.comparison.evidence.n == 150


def test_registering_records_a_profile_and_window_and_refuses_unusable_ones(fresh_migrated: str) -> None:
    profile = {c: {"edges": [0.0, 1.0], "expected": [0.2, 0.5, 0.3], "missing_share": 0.0, "n": 10}
               for c in ("f1", "f2", "f3", "score")}  # fmt: skip
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        registry.register_linear(
            conn, "v2", coef=BASELINE, stats=BASELINE_STATS, actor="t", reference_profile=profile,
            training_from=TRAIN.start, training_to=TRAIN.end, validation_metrics={"n": 1},
        )  # fmt: skip
        stored = conn.execute(
            "SELECT reference_profile, training_from, validation_metrics FROM model_versions "
            "WHERE model_version = 'v2'"
        ).fetchone()
        assert stored == (profile, TRAIN.start, {"n": 1})
        broken = {**profile, "score": {**profile["score"], "expected": [0.5, 0.5, 0.5]}}
        with pytest.raises(registry.RegistryError, match=r"reference profile refused: .*sum to 1"):
            registry.register_linear(
                conn, "v3", coef=BASELINE, stats=BASELINE_STATS, actor="t", reference_profile=broken
            )
        with pytest.raises(registry.RegistryError, match="training window needs both ends"):
            registry.register_linear(
                conn, "v3", coef=BASELINE, stats=BASELINE_STATS, actor="t",
                training_from=TRAIN.end, training_to=TRAIN.start,
            )  # fmt: skip
        assert [v["model_version"] for v in registry.list_versions(conn)] == ["baseline_v1", "v2"]


def strict_json(text: str) -> Any:
    """JSON as a strict parser reads it: NaN, Infinity and -Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_compare_json_and_the_stored_comparison_stay_finite_with_a_huge_error(
    reg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """One stored prediction of 5e298 (a feature of 1e300, accepted before the contract bounded it):
    squaring its error overflowed, and `compare --json` printed `Infinity`."""
    register_linear(reg, "wild", {"f1": 0.3, "f2": 0.2, "f3": 0.5})
    score("baseline_v1", 6, 7)
    score("wild", 6, 7)
    reg.execute(
        "UPDATE predictions SET y_hat = 5e298 WHERE model_version = 'baseline_v1' AND event_id = "
        "(SELECT min(event_id) FROM predictions WHERE model_version = 'baseline_v1')"
    )
    window = ["--from", interval(6).start.isoformat(), "--to", interval(7).start.isoformat()]
    code, out, err = etlml(capsys, "models", "compare", "wild", *window, "--json")
    assert code == 0, err
    found = strict_json(out)
    assert found["champion_rmse"] == pytest.approx(5e298 / np.sqrt(150), rel=1e-6)
    stored = reg.execute(
        "SELECT champion_mae, champion_rmse, mae_diff, ci_low, ci_high FROM model_comparisons "
        "WHERE comparison_id = %s",
        (found["comparison_id"],),
    ).fetchone()
    assert stored is not None and all(v is not None and np.isfinite(v) for v in stored)


def test_if_better_refuses_too_few_resamples_or_pairs_with_the_counts(
    reg: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One resample's "95% interval" is a point: --samples 1 promoted a candidate whose 1,000-sample
    interval straddled zero. Too few resamples or paired labels are refused (exit 2), nothing stored."""
    shadowed(reg, tmp_path)
    capsys.readouterr()
    later = ["--from", LATER.start.isoformat(), "--to", LATER.end.isoformat()]
    code, out, err = etlml(capsys, "models", "promote", "v2", "--if-better", "--samples", "1", *later)
    assert code == 2 and out == ""
    assert "--samples 1" in err and str(evidence.MIN_SAMPLES) in err and len(err.strip().splitlines()) == 1
    load_intervals(reg, 40, 41, events=20)
    score("baseline_v1", 40, 41)
    score("v2", 40, 41)
    few = ["--from", interval(40).start.isoformat(), "--to", interval(41).start.isoformat()]
    code, out, err = etlml(capsys, "models", "promote", "v2", "--if-better", *few)
    assert code == 2 and "20 paired labelled events" in err and str(evidence.MIN_PAIRED) in err
    assert registry.aliases(reg)["champion"] == "baseline_v1"
    assert len(promote_events(reg)) == 1
    # enough of both: the stored evidence names what it was held to
    code, out, err = etlml(capsys, "models", "promote", "v2", "--if-better", *later, "--json")
    assert code == 0, err
    _, _, details = promote_events(reg)[-1]
    assert details["evidence"]["samples"] == 1000 and details["evidence"]["n"] == 450
    assert (details["min_samples"], details["min_paired"]) == (evidence.MIN_SAMPLES, evidence.MIN_PAIRED)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--samples", "nan"),
        ("--samples", "inf"),
        ("--samples", "0"),
        ("--samples", "10000001"),
        ("--seed", "-1"),
        ("--seed", "1e3"),
        ("--seed", str(2**63)),
    ],
)
def test_numeric_options_of_compare_refuse_what_they_cannot_use(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as refused:
        cli.main(["models", "compare", "v2", option, value])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("etlml: ") and len(err.strip().splitlines()) == 1


def test_a_trained_version_has_an_error_estimator_and_others_get_one_from_labelled_events(
    reg: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from etlml.models import estimators
    from etlml.monitoring import metrics
    from etlml.settings import Monitoring

    trained = train_v2(reg, tmp_path)
    stored = estimators.show(reg, "v2")
    assert stored is not None and (stored["fitted_on"], stored["n"]) == ("holdout", 180)
    assert stored["reference_mae"] == pytest.approx(trained.validation_metrics["mae"])
    capsys.readouterr()
    window = ["--from", TRAIN.start.isoformat(), "--to", TRAIN.end.isoformat()]
    code, _, err = etlml(capsys, "models", "fit-estimator", "v2", *window)
    assert code == 2 and "did not train on" in err and len(err.strip().splitlines()) == 1
    later = ["--from", LATER.start.isoformat(), "--to", LATER.end.isoformat()]
    code, _, err = etlml(capsys, "models", "fit-estimator", "baseline_v1", *later)
    assert code == 2 and "shadow or rescore it first" in err
    code, _, err = etlml(capsys, "models", "fit-estimator", "nope", *later)
    assert code == 2 and "not registered" in err
    code, _, err = etlml(
        capsys,
        "models",
        "fit-estimator",
        "baseline_v1",
        "--from",
        LATER.end.isoformat(),
        "--to",
        LATER.start.isoformat(),
    )
    assert code == 2 and "must be before" in err
    score("baseline_v1", 6, 9)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ETLML_STORAGE_ROOT", (blocked / "root").as_uri())
        capsys.readouterr()
        code, _, err = etlml(capsys, "models", "fit-estimator", "baseline_v1", *later)
    assert code == 2 and "cannot be written" in err and len(err.strip().splitlines()) == 1
    assert estimators.show(reg, "baseline_v1") is None
    capsys.readouterr()
    code, out, err = etlml(capsys, "models", "fit-estimator", "baseline_v1", *later, "--json")
    assert code == 0, err
    fitted = strict_json(out)
    assert (fitted["n"], fitted["fitted_on"]) == (450, "labelled events")

    fits = reg.execute(
        "SELECT model_version, actor, details->>'fitted_on' FROM model_events WHERE event = 'fit_estimator' "
        "ORDER BY event_id"
    ).fetchall()
    assert [(v, f) for v, _, f in fits] == [("v2", "holdout"), ("baseline_v1", "labelled events")]

    # an estimator file changed after it was stored is refused; the realized figures are computed all the same
    Path(fitted["artifact_uri"].removeprefix("file://")).write_bytes(b"not skops")
    report = metrics.compute_interval(reg, interval(6), Monitoring())
    assert report.estimates == () and report.performance[0].n_labeled == 150
