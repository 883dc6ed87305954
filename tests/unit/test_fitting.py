"""Training a scikit-learn version on labelled events (pure): holdout, refit, statistics, profile."""

import numpy as np
import pandas as pd
import pytest

from etlml.features.profile import check_profile, column_profile
from etlml.models import fitting
from etlml.models.scoring import SklearnModel


def labelled(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f1, f2, f3 = rng.normal(10, 2, n), rng.normal(0, 1, n), rng.normal(100, 10, n)
    f2[rng.random(n) < 0.05] = np.nan
    z1 = (f1 - 10) / 2
    y = 0.3 * z1 + 0.2 * np.nan_to_num(f2) + 0.5 * (f3 - 100) / 10 + 0.6 * (z1**2 - 1)
    ts = pd.Timestamp("2026-11-25T12:00:00Z") + pd.to_timedelta(np.arange(n), unit="s")
    frame = pd.DataFrame(
        {"event_id": [f"e{i:05d}" for i in range(n)], "ts_utc": ts, "f1": f1, "f2": f2, "f3": f3}
    )
    return frame.assign(y_true=y + rng.normal(0, 0.05, n)).sample(frac=1.0, random_state=1)  # shuffled


def test_validation_is_on_the_latest_fifth_and_the_version_is_refitted_on_all() -> None:
    frame = labelled(1000)
    trained = fitting.train(frame, "hist_gradient_boosting", "v2")
    metrics = trained.validation_metrics
    assert (metrics["n"], metrics["n_fit"]) == (200, 800)
    assert metrics["holdout"] == fitting.HOLDOUT_RULE
    ordered = frame.sort_values("ts_utc")
    early, late = ordered.iloc[:800], ordered.iloc[800:]
    again = fitting.make_estimator("hist_gradient_boosting")
    stats = trained.stats
    x = np.column_stack([early[f].fillna(stats[f].mean) for f in ("f1", "f2", "f3")])
    again.fit(x, early["y_true"])
    held = SklearnModel("v", again, stats).predict(late, use_stored_z=False)
    assert metrics["mae"] == pytest.approx(np.abs(held - late["y_true"]).mean(), rel=1e-12)
    # the registered estimator saw every event: its training error is below the holdout's
    scores = SklearnModel("v2", trained.estimator, stats).predict(ordered, use_stored_z=False)
    assert np.abs(scores[800:] - late["y_true"].to_numpy()).mean() < metrics["mae"]


def test_the_profile_covers_raw_inputs_and_the_versions_own_scores() -> None:
    frame = labelled(500)
    trained = fitting.train(frame, "ridge", "r1")
    check_profile(trained.reference_profile)
    assert trained.reference_profile["f1"] == column_profile(frame.sort_values("ts_utc")["f1"].to_numpy())
    assert trained.reference_profile["f2"]["missing_share"] == pytest.approx(frame["f2"].isna().mean())
    scores = SklearnModel("r1", trained.estimator, trained.stats).predict(frame, use_stored_z=False)
    assert trained.reference_profile["score"] == column_profile(scores)  # order does not matter
    assert trained.stats["f2"].mean == pytest.approx(frame["f2"].mean())  # missing values left out
    assert trained.stats["f3"].std == pytest.approx(frame["f3"].std(ddof=1))


def test_boosting_finds_the_non_linear_term_that_ridge_cannot() -> None:
    frame = labelled(2000)
    ridge = fitting.train(frame, "ridge", "r").validation_metrics["mae"]
    boosted = fitting.train(frame, "hist_gradient_boosting", "b").validation_metrics["mae"]
    assert boosted < 0.5 * ridge


def test_training_is_deterministic() -> None:
    frame = labelled(600)
    one, two = (fitting.train(frame, "hist_gradient_boosting", v) for v in ("a", "b"))
    assert one.validation_metrics == two.validation_metrics
    assert one.reference_profile == two.reference_profile


def test_too_few_labelled_events_say_how_many_and_what_to_do() -> None:
    with pytest.raises(fitting.TrainingError, match=r"only 99 labelled processed events .* at least 100"):
        fitting.train(labelled(99), "ridge", "v2")


def test_an_unknown_estimator_and_a_constant_feature_are_refused() -> None:
    with pytest.raises(fitting.TrainingError, match="unknown estimator 'svm'"):
        fitting.train(labelled(200), "svm", "v2")
    with pytest.raises(fitting.TrainingError, match=r"f3 .* no spread"):
        fitting.train(labelled(200).assign(f3=5.0), "ridge", "v2")


def test_the_command_line_offers_exactly_the_estimators_there_are() -> None:
    from etlml import cli

    parsed = cli.build_parser().parse_args(
        [
            "models",
            "train",
            "v2",
            "--estimator",
            "ridge",
            "--from",
            "2026-11-25T00:00Z",
            "--to",
            "2026-11-26T00:00Z",
        ]
    )
    assert parsed.estimator == "ridge"
    models = next(a for a in cli.build_parser()._subparsers._group_actions[0].choices["models"]._actions
                  if a.dest == "models_command")  # fmt: skip
    train = models.choices["train"]
    [estimator] = [a for a in train._actions if a.dest == "estimator"]
    assert tuple(estimator.choices) == fitting.ESTIMATORS
